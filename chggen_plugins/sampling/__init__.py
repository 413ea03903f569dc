"""Tensors only: noise ladders, RePaint schedules, VE noise processes and the inpainting loop."""
