"""Study 004: presets (conf/experiment), manifests and claim checks."""
