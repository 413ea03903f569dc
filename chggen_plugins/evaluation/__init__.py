"""What is measured on a generated structure: CHGNet relaxation, space groups, stability (Ed),
coordination and intercalation voltages."""
