"""Writes a symbolic link to a file of the host (by path) as its output."""
import os

os.symlink("/etc/shadow", "/output/images/sagittal-spine-mr-segmentation/segmentation.mha")
