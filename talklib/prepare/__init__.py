"""Your own video -> a training set: ``python -m talklib prepare --video talk.mp4 --out data/me``.

``video`` (decode at 25 fps, phone-style test videos), ``track`` (mediapipe landmarks, lost frames, the
crop), ``fit`` (the morphable model over the whole video, smoothed pose, albedo and light), ``build``
(the dataset folder), ``report`` (``prepare_report.html``), ``command`` (the command line), ``accuracy``
(a prepared synthetic clip scored against its ground truth).

It sits on the commands' floor of the layering (it uses face3d's fitting, audio's features, the speaker's
polygon fill and clip helpers, sync's mouth boxes and condition's feature networks).
"""
