"""Tensors only: noise ladders, RePaint schedules, VE noise processes, the solvers' moves and the
inpainting loop."""

# The solvers' names, here (no torch) so the CLI and the campaign config can offer them.
SOLVERS = ("pc", "heun", "ode")
