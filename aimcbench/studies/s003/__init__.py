"""Study 003: presets (conf/experiment), manifests and claim checks."""
