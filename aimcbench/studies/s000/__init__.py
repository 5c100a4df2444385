"""Study 000: presets (conf/experiment), manifests and claim checks."""
