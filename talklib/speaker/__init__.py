"""The ground-truth synthetic speaker: speech -> visemes -> expression curves, spontaneous motion, rendering, corpus building."""
