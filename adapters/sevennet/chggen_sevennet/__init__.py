"""SevenNet as a CHGGen relaxer (`--relaxer sevennet`, `[relax] relaxer = "sevennet"`): registration
only, in `plugin.py`; the calculator is SevenNet's own ASE calculator."""
