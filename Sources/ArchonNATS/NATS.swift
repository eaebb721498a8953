public enum ArchonNATSPlaceholder {}
