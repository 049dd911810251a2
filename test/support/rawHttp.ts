/**
 * Test support: HTTP/1.1 over a raw socket, for requests `fetch` will not send byte for byte (a raw
 * `0xA0` in a header, a body streamed slowly or never), and for watching when the response arrives.
 *
 * ```ts
 * const reply = yield* rawRequest(url, "GET /read HTTP/1.1\r\nHost: x\r\nCookie: \xa0sid=abc\r\nConnection: close\r\n\r\n")
 * assert.strictEqual(reply.status, 200)
 * ```
 */
import * as Effect from "effect/Effect"
import { connect, type Socket } from "node:net"

/** A response read off the socket. Header names are lower-cased; repeated headers are kept in order. */
export interface RawReply {
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}

/** `parseReply` reads a response head (and the body when its length is known) from the bytes so far. */
export const parseReply = (bytes: Buffer): RawReply | undefined => {
  const end = bytes.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const [statusLine, ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n")
  const headers = lines.map((line) => {
    const i = line.indexOf(":")
    return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()] as const
  })
  const length = Number(headers.find(([name]) => name === "content-length")?.[1] ?? "0")
  const body = bytes.subarray(end + 4)
  if (body.length < length) return undefined
  return { status: Number(statusLine.split(" ")[1]), headers, body: body.subarray(0, length).toString("utf8") }
}

/** `open(url)` connects a socket to the server at `url` (closed when the effect's scope ends). */
export const open = (url: string) =>
  Effect.acquireRelease(
    Effect.async<Socket>((resume) => {
      const { hostname, port } = new URL(url)
      const socket = connect({ host: hostname, port: Number(port) }, () => resume(Effect.succeed(socket)))
      socket.once("error", (e) => resume(Effect.die(e)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/**
 * `awaitReply(socket, send)` runs `send` and succeeds with the first complete response on `socket`, or dies
 * if the socket closes first.
 */
export const awaitReply = (socket: Socket, send: () => void = () => {}): Effect.Effect<RawReply> =>
  Effect.async<RawReply>((resume) => {
    let received = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const reply = parseReply(received)
      if (reply !== undefined) {
        socket.off("data", onData)
        resume(Effect.succeed(reply))
      }
    }
    socket.on("data", onData)
    socket.once("close", () => resume(Effect.dieMessage("the connection closed before a complete response")))
    send()
  })

/** `rawRequest(url, request)` sends `request` (a latin1 string: one char, one byte) and reads the response. */
export const rawRequest = (url: string, request: string): Effect.Effect<RawReply> =>
  Effect.scoped(
    Effect.flatMap(open(url), (socket) => awaitReply(socket, () => socket.write(Buffer.from(request, "latin1"))))
  )
