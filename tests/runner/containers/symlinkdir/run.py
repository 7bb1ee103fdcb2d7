"""Replaces the output folder by a symbolic link to /etc, with an .mha link inside reach."""
import os

os.rmdir("/output/images/sagittal-spine-mr-segmentation")
os.symlink("/etc", "/output/images/sagittal-spine-mr-segmentation")
