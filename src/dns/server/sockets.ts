/**
 * Where the server's sockets come from: this thread's network namespace (plain Node sockets), or a given
 * one (`netns`), created there by podnet's addon and adopted by file descriptor: the lab's single process
 * serves DNS inside pod namespaces without entering them for anything asynchronous. Listeners, upstream
 * clients and the metrics endpoint all go through here, so nothing assumes the root namespace.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { closeSync } from "node:fs";
import { connect, isIP, type Server, type Socket } from "node:net";
import { connectTcp, openNetnsSocket } from "../../linux/netns-native.js";

export interface SocketFactory {
  /** A UDP socket bound to address:port (0 = any free port). */
  udpServer(address: string, port: number): Promise<UdpSocket>;
  /** Makes `server` listen on address:port. */
  listen(server: Server, address: string, port: number): Promise<void>;
  /** An unbound UDP socket for queries to upstreams of this address family. */
  udpClient(family: 4 | 6): Promise<UdpSocket>;
  /** A TCP connection to address:port, or a rejection after timeoutMs. */
  tcpConnect(address: string, port: number, timeoutMs: number): Promise<Socket>;
}

function familyOf(address: string): 4 | 6 {
  return isIP(address) === 6 ? 6 : 4;
}

/**
 * Replies go to the address a query came from, always an IP literal: resolving it is a no-op, but Node's
 * default lookup defers each send by a tick. This one answers at once.
 */
function literalLookup(
  address: string,
  _options: unknown,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(address);
  if (family === 0)
    callback(Object.assign(new Error(`not an IP address: ${address}`), { code: "EINVAL" }), "", 0);
  else callback(null, address, family);
}

function udpSocketFor(family: 4 | 6): UdpSocket {
  return createSocket({ type: family === 6 ? "udp6" : "udp4", lookup: literalLookup });
}

function bindUdp(
  socket: UdpSocket,
  options: { fd: number } | { address: string; port: number },
): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(options, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

function listenServer(
  server: Server,
  options: { fd: number } | { host: string; port: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ ...options, backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Sockets in this thread's network namespace. */
export const hereSockets: SocketFactory = {
  udpServer: (address, port) => bindUdp(udpSocketFor(familyOf(address)), { address, port }),
  listen: (server, address, port) => listenServer(server, { host: address, port }),
  udpClient: async (family) => udpSocketFor(family),
  tcpConnect: (address, port, timeoutMs) =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: address, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          Object.assign(new Error(`connect ${address} port ${port}: no answer within ${timeoutMs} ms`), {
            code: "ETIMEDOUT",
          }),
        );
      }, timeoutMs);
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(socket);
      });
    }),
};

/** Sockets created in the network namespace at `netnsPath` (e.g. /run/netns/NAME or /proc/PID/ns/net). */
export function netnsSockets(netnsPath: string): SocketFactory {
  const adoptUdp = async (fd: number, family: 4 | 6) => {
    try {
      return await bindUdp(udpSocketFor(family), { fd });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  };
  return {
    udpServer: (address, port) =>
      adoptUdp(openNetnsSocket(netnsPath, familyOf(address), "udp", port, address, false), familyOf(address)),
    listen: (server, address, port) =>
      listenServer(server, { fd: openNetnsSocket(netnsPath, familyOf(address), "tcp", port, address, true) }),
    udpClient: (family) => adoptUdp(openNetnsSocket(netnsPath, family, "udp", 0, "", false), family),
    tcpConnect: (address, port, timeoutMs) => connectTcp(netnsPath, address, port, { timeoutMs }),
  };
}
