"""HTTP edge: the Roboto wire shapes live here and nowhere else."""
