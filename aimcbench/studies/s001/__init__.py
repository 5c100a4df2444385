"""Study 001: presets (conf/experiment), manifests and claim checks."""
