"""The evaluation suite: image quality, landmarks, sharpness, blinks, action units, head pose."""
