/// A small deterministic generator (SplitMix64) so randomised tests repeat for a given seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Starts the sequence at `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Produces fuzz inputs: mutations of valid samples (bit flips, truncation, splicing, byte and
/// length edits, nesting edits) and random byte strings.
public struct FuzzMutator: Sendable {
    /// The valid samples mutations start from.
    public let samples: [[UInt8]]
    /// Bytes that matter to the format (e.g. `{`, `"`, `/`), inserted by some mutations.
    public let dictionary: [[UInt8]]

    public init(samples: [[UInt8]], dictionary: [[UInt8]] = []) {
        precondition(!samples.isEmpty)
        self.samples = samples
        self.dictionary = dictionary
    }

    /// One mutation of a random sample (1–4 stacked edits).
    public func mutate(using rng: inout SeededRandom) -> [UInt8] {
        var bytes = samples.randomElement(using: &rng)!
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            bytes = edit(bytes, using: &rng)
        }
        return bytes
    }

    /// A random byte string up to `maxLength` bytes, half of the time drawn from the dictionary.
    public func random(maxLength: Int = 256, using rng: inout SeededRandom) -> [UInt8] {
        var out: [UInt8] = []
        let length = Int.random(in: 0...maxLength, using: &rng)
        while out.count < length {
            if !dictionary.isEmpty && Bool.random(using: &rng) {
                out += dictionary.randomElement(using: &rng)!
            } else {
                out.append(UInt8.random(in: 0...255, using: &rng))
            }
        }
        return out
    }

    /// `count` inputs, `mutationShare` of them mutations of samples, the rest random.
    public func inputs(count: Int, mutationShare: Double = 0.6, seed: UInt64) -> [[UInt8]] {
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            Double.random(in: 0..<1, using: &rng) < mutationShare ? mutate(using: &rng) : random(using: &rng)
        }
    }

    private func edit(_ input: [UInt8], using rng: inout SeededRandom) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<9, using: &rng) {
        case 0 where !bytes.isEmpty:  // bit flip
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
        case 1 where !bytes.isEmpty:  // truncation
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
        case 2:  // splice with another sample
            let other = samples.randomElement(using: &rng)!
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            let from = Int.random(in: 0...other.count, using: &rng)
            bytes = Array(bytes[..<cut]) + other[from...]
        case 3 where !bytes.isEmpty:  // byte replaced by an interesting value
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x30, 0x2F, 0x22, 0x5C].randomElement(using: &rng)!
        case 4:  // dictionary token inserted
            let token = dictionary.randomElement(using: &rng) ?? [UInt8.random(in: 0...255, using: &rng)]
            bytes.insert(contentsOf: token, at: Int.random(in: 0...bytes.count, using: &rng))
        case 5 where !bytes.isEmpty:  // a range duplicated (length growth)
            let a = Int.random(in: 0..<bytes.count, using: &rng)
            let b = Int.random(in: a...min(bytes.count, a + 64), using: &rng)
            bytes.insert(contentsOf: bytes[a..<b], at: b)
        case 6 where !bytes.isEmpty:  // a range deleted
            let a = Int.random(in: 0..<bytes.count, using: &rng)
            let b = Int.random(in: a...min(bytes.count, a + 32), using: &rng)
            bytes.removeSubrange(a..<b)
        case 7:  // nesting edit: wrap a range in brackets or braces
            let pair: (UInt8, UInt8) = [(0x5B, 0x5D), (0x7B, 0x7D), (0x30, 0x00)].randomElement(using: &rng)!
            let depth = Int.random(in: 1...64, using: &rng)
            let at = Int.random(in: 0...bytes.count, using: &rng)
            bytes.insert(contentsOf: [UInt8](repeating: pair.0, count: depth), at: at)
            if Bool.random(using: &rng) { bytes += [UInt8](repeating: pair.1, count: depth) }
        default:  // length-byte edit: bump a byte that may be a DER length
            if !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = bytes[i] &+ UInt8.random(in: 1...3, using: &rng)
            }
        }
        return bytes
    }
}
