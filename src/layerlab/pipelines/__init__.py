"""layerlab.pipelines."""
