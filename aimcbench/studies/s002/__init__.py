"""Study 002: presets (conf/experiment), manifests and claim checks."""
