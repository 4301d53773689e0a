"""Networks: saved specs or presets, validated by the engine on save."""
