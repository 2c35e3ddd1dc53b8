import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

struct AuthRequestTimeout: Error {}
