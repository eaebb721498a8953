public enum ArchonWire {}
