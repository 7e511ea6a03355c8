"""The Space: every tracked binary is marked for LFS/Xet, and the deploy script (Hub mocked at the upload edge)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from app_server import ROOT


def _tracked_binaries() -> list[str]:
    """Tracked files git itself sees as binary (``-`` counts in ``git diff --numstat`` against the empty tree)."""
    empty = subprocess.run(
        ["git", "hash-object", "-t", "tree", "/dev/null"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    out = subprocess.run(
        ["git", "diff", "--numstat", empty, "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [line.split("\t", 2)[2] for line in out.splitlines() if line.startswith("-\t-\t")]


def test_every_tracked_binary_goes_through_lfs():
    binaries = _tracked_binaries()
    assert any(path.endswith(".png") for path in binaries) and "examples/clip.mp4" in binaries
    out = subprocess.run(
        ["git", "check-attr", "filter", "--", *binaries], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    missing = [line.split(":")[0] for line in out.splitlines() if not line.endswith(": filter: lfs")]
    assert not missing, f"binary files not marked for LFS/Xet in .gitattributes: {missing}"


def _deploy_space():
    sys.path.insert(0, str(ROOT / "scripts"))
    import deploy_space

    return deploy_space


HUB_CALLS = ("create_repo", "upload_folder", "add_space_variable", "request_space_hardware")


def test_deploy_space_uploads_an_allow_list_and_sets_the_variables(monkeypatch, capsys):
    # The one mock in the project: huggingface_hub's HfApi at the network edge (no Space is really created).
    import huggingface_hub

    deploy_space = _deploy_space()
    calls: dict[str, list] = {}
    uploaded: dict[str, str] = {}

    def record(name):
        def method(self, *args, **kwargs):
            calls.setdefault(name, []).append((args, kwargs))
            if name == "upload_folder":
                folder = Path(kwargs["folder_path"])
                uploaded.update(
                    {
                        p.relative_to(folder).as_posix(): p.read_text(errors="replace")
                        for p in folder.rglob("*")
                        if p.is_file()
                    }
                )

        return method

    for name in HUB_CALLS:
        monkeypatch.setattr(huggingface_hub.HfApi, name, record(name))
    status = deploy_space.main(
        ["me/vfi", "--adapter", "me/vfi-lora@0.9", "--lightning", "lightx2v/Qwen-Image-Lightning", "--private"]
    )
    assert status == 0 and capsys.readouterr().out.strip() == "https://huggingface.co/spaces/me/vfi"
    assert calls["create_repo"] == [
        (("me/vfi",), {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True})
    ]
    needed = {"app.py", "README.md", "requirements.txt", "vfi/__init__.py", "ui/keyframes.py", "examples/clip.mp4"}
    assert needed <= set(uploaded)
    assert not [
        p
        for p in uploaded
        if p.startswith((".venv", "tests", ".git", "outputs", "benchmarks", "scripts"))
        or "__pycache__" in p
        or p.endswith(".pyc")
    ]
    links = re.findall(r"\]\(([^)\s#:]+)", uploaded["README.md"])  # relative links (no scheme), anchors cut
    assert links and not [link for link in links if link not in uploaded]  # the Space's page links work
    requirements = uploaded["requirements.txt"].splitlines()
    assert "torch==2.8.0" in requirements and "spaces==0.51.3" in requirements and "gradio[mcp]==6.31.0" in requirements
    assert not [line for line in requirements if "#" in line or not line.strip()]  # no notes about our machines
    assert "  - me/vfi-lora\n" in uploaded["README.md"]  # the adapter in the front matter's models
    variables = {args[1]: args[2] for args, _ in calls["add_space_variable"]}
    assert variables == {"VFI_ADAPTER": "me/vfi-lora@0.9", "VFI_LIGHTNING": "lightx2v/Qwen-Image-Lightning"}
    assert calls["request_space_hardware"] == [(("me/vfi", "zero-a10g"), {})]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["me/vfi", "--adapter", "ORG/X@abc"], "The adapter scale in 'ORG/X@abc' is not a number."),
        (["me/vfi", "--lightning", ""], "--lightning is empty; leave it out or name a Hub repo."),
        (["me/vfi", "--hardware", "quantum-9000"], "--hardware 'quantum-9000' is not a Space hardware"),
        (["me/vfi", "--adapter", "./my-lora"], "./my-lora is not a Hub repo id (OWNER/NAME); a Space cannot read"),
        (["vfi"], "The Space must be OWNER/NAME, got 'vfi'."),
    ],
)
def test_deploy_space_checks_every_argument_before_the_hub(monkeypatch, capsys, args, message):
    import huggingface_hub

    deploy_space = _deploy_space()
    for name in HUB_CALLS:
        monkeypatch.setattr(huggingface_hub.HfApi, name, lambda *a, **k: pytest.fail("reached the Hub"))
    with pytest.raises(SystemExit) as exit_info:
        deploy_space.main(args)
    error = capsys.readouterr().err.strip().splitlines()  # argparse's usage, then the one sentence
    assert exit_info.value.code == 2 and error[0].startswith("usage:") and message in error[-1].split(": error: ")[1]


def test_deploy_space_says_in_one_sentence_that_the_hub_is_unreachable(monkeypatch, capsys):
    import httpx2
    import huggingface_hub

    def offline(*args, **kwargs):
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", offline)
    assert _deploy_space().main(["me/vfi"]) == 2
    assert capsys.readouterr().err == (
        "error: could not reach the Hugging Face Hub (ConnectError); check the network and try again.\n"
    )


def test_zero_gpu_flag_off_a_space_says_so_and_runs_locally(tmp_path):
    # A stand-in for spaces 0.51.3, which asserts SPACES_ZERO_DEVICE_API_URL on import when SPACES_ZERO_GPU is set
    # (spaces/config.py); the real package is not installed here.
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(
        "import os\nassert os.getenv('SPACES_ZERO_DEVICE_API_URL'), 'SPACES_ZERO_DEVICE_API_URL env must be set'\n"
    )
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env.pop("SPACES_ZERO_DEVICE_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(app.spaces, app.run_on_gpu is app.run_model)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.split() == ["None", "True"], done.stderr
    assert "Traceback" not in done.stderr
    assert "SPACES_ZERO_GPU is set but this is not a ZeroGPU Space; running locally." in done.stderr


def test_mcp_support_is_pinned_the_way_gradio_declares_it():
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = {req.name.lower(): req for req in map(Requirement, filter(None, lines))}
    assert "mcp" in pins["gradio"].extras  # gradio[mcp]: the extra brings mcp and bounds pydantic (≤ 2.12.5 in 6.31)
    extra = [Requirement(r) for r in requires("gradio") or [] if "extra ==" in r]
    bounds = [req for req in extra if req.marker.evaluate({"extra": "mcp"}) and req.name.lower() in pins]
    for bound in bounds:  # a direct pin of mcp or pydantic must lie within gradio's range
        pinned = [s.version for s in pins[bound.name.lower()].specifier if s.operator == "=="]
        assert all(bound.specifier.contains(v) for v in pinned), (bound, pins[bound.name.lower()])


def _report(name: str, version: str, requires: list[str], extras: list[str] | None = None) -> dict:
    """One entry of ``pip install --report``."""
    return {"metadata": {"name": name, "version": version, "requires_dist": requires}, "requested_extras": extras}


def test_the_space_requirements_check_finds_what_pip_check_would():
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_space_requirements import broken

    gradio = _report("gradio", "6.31.0", ['mcp<2,>=1.21; extra == "mcp"', 'pydantic<=2.12.5; extra == "mcp"'], ["mcp"])
    mcp = _report("mcp", "1.30.0", ["pydantic<3,>=2.11", 'pywin32>=310; sys_platform == "win32"'])
    assert broken([gradio, mcp, _report("pydantic", "2.12.5", [])], "3.12") == []
    assert broken([gradio, mcp, _report("pydantic", "2.14.4", [])], "3.12") == [
        'gradio requires pydantic<=2.12.5; extra == "mcp", but pydantic 2.14.4 is installed'
    ]
    assert broken([gradio, _report("pydantic", "2.12.5", [])], "3.12") == [
        'gradio requires mcp<2,>=1.21; extra == "mcp", which is not installed'
    ]
