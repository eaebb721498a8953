/// Placement classes of GPUs, as job specs and the policy's `gpuUpgrades` name them: `<family>-<marketed GB>gb`
/// (`a100-40gb`, `h100-80gb`, `h200-141gb`).
///
/// nvidia-smi names a product with its form factor and reports memory in MiB, a little under the marketed size
/// (an H200 reports 143771 MiB, 140.4 GiB, sold as 141 GB); the class drops the form factor and rounds to the
/// marketed size, so that a node's GPUs match what jobs and the upgrade table ask for.
public enum GPUClass {
    /// Families whose marketed memory sizes are known, in GB; matched against whole words of the product name.
    public static let knownFamilies: [String: [Int]] = [
        "t4": [16], "v100": [16, 32],
        "a10": [24], "a10g": [24], "a30": [24], "a40": [48], "a100": [40, 80], "a800": [40, 80],
        "l4": [24], "l40": [48], "l40s": [48],
        "h100": [80, 94, 96], "h800": [80], "h200": [141], "gh200": [96, 144],
        "b200": [180, 192],
    ]

    /// Words of a product name that say nothing about the class: vendor and product lines, form factors, memory kinds.
    static let noise: Set<String> = [
        "nvidia", "tesla", "geforce", "quadro", "sxm", "sxm2", "sxm3", "sxm4", "sxm5", "pcie", "hbm2", "hbm2e", "hbm3", "hbm3e",
        "nvl", "mig",
    ]

    /// The class of a GPU from its nvidia-smi product name and reported memory (`memory.total`, MiB; nil when
    /// nvidia-smi said `[N/A]`).
    ///
    /// A known family gets the marketed size nearest the reported memory (`NVIDIA H200`, 143771 → `h200-141gb`;
    /// `NVIDIA A100-SXM4-40GB`, 40960 → `a100-40gb`); a size printed in the name wins when it is one the family is
    /// sold with. An unknown product keeps its model words, lower case and joined by `-`, and the memory rounded
    /// to whole GiB (`NVIDIA RTX A6000`, 49140 → `rtx-a6000-48gb`). With no memory to go by, the class is the
    /// model alone (`a100`), which no job asks for: the node offers no placeable GPU rather than a wrong one.
    public static func canonical(productName: String, memoryMiB: UInt64?) -> String {
        // "[N/A]" and the like: nvidia-smi could not read the name.
        let known = productName.trimmingPrefixSpaces.hasPrefix("[") ? "" : productName
        let words = known.lowercased()
            .split(whereSeparator: { !($0.isASCII && ($0.isLetter || $0.isNumber)) })
            .map(String.init)
        var sizeInName: Int?
        var model: [String] = []
        for word in words where !noise.contains(word) {
            if word.hasSuffix("gb"), let gb = Int(word.dropLast(2)), gb > 0 {
                sizeInName = sizeInName ?? gb
            } else {
                model.append(word)
            }
        }
        let reportedGiB = memoryMiB.flatMap { $0 > 0 ? Double($0) / 1024 : nil }
        if let family = model.first(where: { knownFamilies[$0] != nil }), let sizes = knownFamilies[family] {
            if let gb = sizeInName, sizes.contains(gb) { return "\(family)-\(gb)gb" }
            if let gib = reportedGiB {
                let nearest = sizes.min { abs(Double($0) - gib) < abs(Double($1) - gib) } ?? sizes[0]
                // Far from every size it is sold with: a model we do not know yet; say what it has.
                if abs(Double(nearest) - gib) <= Double(nearest) * 0.1 { return "\(family)-\(nearest)gb" }
                return "\(family)-\(Int(gib.rounded()))gb"
            }
            if let gb = sizeInName { return "\(family)-\(gb)gb" }
            return sizes.count == 1 ? "\(family)-\(sizes[0])gb" : family
        }
        let name = model.isEmpty ? "gpu" : model.joined(separator: "-")
        if let gib = reportedGiB { return "\(name)-\(Int(gib.rounded()))gb" }
        if let gb = sizeInName { return "\(name)-\(gb)gb" }
        return name
    }
}

extension String {
    fileprivate var trimmingPrefixSpaces: Substring { drop(while: { $0 == " " }) }
}
