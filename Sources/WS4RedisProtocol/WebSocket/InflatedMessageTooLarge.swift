/// An inflated message grew past the message size limit.
package struct InflatedMessageTooLarge: Error {
    package init() {}
}
