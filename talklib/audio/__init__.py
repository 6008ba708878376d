"""Audio: loading, frame-aligned features, SpeechSplit disentanglement, phoneme recognizer, contrastive sync."""
