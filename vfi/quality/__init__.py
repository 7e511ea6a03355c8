"""Measuring quality: PSNR/SSIM and scoring a backend on triplet folders."""
