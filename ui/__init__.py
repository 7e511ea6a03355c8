"""The app's page, one module per tab (gradio lives here and in ``app.py``, never in ``vfi``)."""
