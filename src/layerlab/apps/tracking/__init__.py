"""MLflow's tracking REST protocol over the lab's projects and runs (experiments are projects)."""
