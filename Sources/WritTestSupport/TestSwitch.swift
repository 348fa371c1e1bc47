import Foundation

/// A flag a test flips in one task and reads in others, such as the trigger of an injected
/// fault.
public final class TestSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false

    public init() {}

    public var isOn: Bool {
        get { lock.withLock { on } }
        set { lock.withLock { on = newValue } }
    }
}
