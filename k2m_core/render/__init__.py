"""Headless drawing of keypoints and skeletons (PIL, no OpenGL) and video writing (imageio)."""
