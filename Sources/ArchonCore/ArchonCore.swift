public enum ArchonCore {}
