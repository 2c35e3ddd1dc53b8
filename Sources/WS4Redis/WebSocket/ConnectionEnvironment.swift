import Logging
import NIOCore

/// What the websockets of one event loop are given, one reference per connection: the server's
/// settings and figures, and the port to the loop's subscriptions.
package final class ConnectionEnvironment {
    let settings: ConnectionSettings
    let counters: ServerCounters
    let logger: Logger
    let subscriptions: any SubscriptionPort
    /// The loop's index among the server's loops, for its figures.
    let loop: Int

    package init(settings: ConnectionSettings, counters: ServerCounters, logger: Logger, subscriptions: any SubscriptionPort, loop: Int = 0) {
        self.settings = settings
        self.counters = counters
        self.logger = logger
        self.subscriptions = subscriptions
        self.loop = loop
    }

    /// The one handler of an established websocket, the same whether NIO accepted the socket or a
    /// host handed it over: it parses its frames itself.
    package func handler(for plan: ConnectionPlan) -> any ChannelHandler {
        WebSocketConnectionHandler(plan: plan, environment: self)
    }
}
