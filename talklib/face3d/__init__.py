"""3D morphable head model, camera, rasterizer, fitting and landmarks (NeRF-3DTalker / DFA-NeRF Eq. 1)."""
