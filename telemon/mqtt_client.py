"""One way to make a paho-mqtt client from a telemon MQTT URL, a readiness probe, and a driver that runs a
client on the asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from telemon.settings import parse_mqtt_url

if TYPE_CHECKING:
    from paho.mqtt.client import _OutPacket

log = logging.getLogger(__name__)


# The PUBACKs a broker sends for a message it took (MQTT 5 §3.4.2.1): Success, or No matching subscribers (0x10:
# nobody subscribes to the topic, as for a device that does not listen to its receipts). Shared, never changed.
_PUBACK_TOOK = {
    code: ReasonCode(PacketTypes.PUBACK, identifier=code)  # type: ignore[no-untyped-call]
    for code in (0x00, 0x10)
}
_PUBACK_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]
_PUBLISH_NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


class Client(mqtt.Client):
    """paho's client, with a bounded read for an event loop (``read_packets``), and the commonest packet of a QoS 1
    publisher handled in a few steps: the broker's PUBACK of a message it took — the message id alone (MQTT 3.1.1;
    MQTT 5 Success), or the id and a reason code of Success or No matching subscribers without properties (MQTT
    5). paho decodes every PUBACK into a new ``ReasonCode`` and a new ``Properties``, whose constructor builds its
    tables of every MQTT 5 property: a fifth of the consumer's CPU when it publishes a receipt for each message.
    This hands the callbacks shared, equal ones; every other packet takes paho's own path. The same goes for the
    commonest packet of a QoS 1 subscriber (``_handle_publish``), and on an event loop the socket is read and
    written in chunks rather than a system call per packet, or per byte (``event_loop_io``). paho is pinned to 2.2
    (``pyproject.toml``), and every private member of paho this class relies on is named in ``PAHO_PRIVATE``:
    ``tests/test_mqtt_client.py`` checks that paho still has each of them, and compares both PUBACK paths on the
    same packets. Nothing else in telemon touches paho's private members."""

    # paho's private members used here, and why: reading one packet (_packet_read, _loop_rc_handle, _sock), the
    # PUBACK being handled (_handle_pubackcomp, overridden; _in_packet, _protocol), releasing its message as
    # paho does (_out_message_mutex, _out_messages, _do_on_publish), and the event loop's buffered reads and
    # gathered writes (_sock_recv and _packet_write, overridden; _sock_send, _out_packet, _msgtime_mutex,
    # _last_msg_out, _easy_log)
    PAHO_PRIVATE = (
        "_packet_read",
        "_loop_rc_handle",
        "_sock",
        "_handle_pubackcomp",
        "_in_packet",
        "_protocol",
        "_out_message_mutex",
        "_out_messages",
        "_do_on_publish",
        "_sock_recv",
        "_sock_send",
        "_packet_write",
        "_out_packet",
        "_msgtime_mutex",
        "_last_msg_out",
        "_easy_log",
        "_handle_publish",
        "_handle_on_message",
        "_manual_ack",
        "_send_puback",
        "_packet_handle",
        "_last_bytes_received",
    )
    # Socket reads and writes of up to this many bytes when driven by an event loop (``event_loop_io``)
    IO_CHUNK = 65536
    event_loop_io = False  # set by LoopDriver: every read and write of this client happens on the loop's thread
    _recv_buffer = b""  # bytes read from _recv_sock and not yet handed to paho, from _recv_pos on
    _recv_pos = 0
    _recv_sock: object = None

    def read_packets(self, limit: int) -> MQTTErrorCode:
        """``loop_read``, but at most ``limit`` packets (paho reads up to one per message in flight: with
        hundreds of receipts unacknowledged, one call handled hundreds of packets while the database's answers to
        the batches being stored waited behind it). What is left stays readable for the next turn of the loop.
        Returns MQTT_ERR_AGAIN once the socket had nothing more, MQTT_ERR_SUCCESS when it stopped at ``limit``."""
        for _ in range(limit):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_AGAIN  # nothing more to read now
        return MQTTErrorCode.MQTT_ERR_SUCCESS  # ``limit`` packets read: more may be waiting

    def buffered(self) -> bool:
        """Whether bytes already read from the socket wait to be handled (the socket may not be readable)."""
        return self._recv_pos < len(self._recv_buffer) and self._recv_sock is self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        """paho reads a packet in three system calls at least (its first byte, each byte of its length, the
        rest): on an event loop the socket is read ``IO_CHUNK`` bytes at a time instead and paho served from
        that, a seventh of the consumer's CPU under a flood of small messages. Bytes read from a socket that has
        since been replaced are dropped with it."""
        pos, buffer = self._recv_pos, self._recv_buffer
        if pos < len(buffer):
            if self._recv_sock is self._sock:
                self._recv_pos = pos + bufsize
                return buffer[pos : pos + bufsize]
            self._recv_buffer, self._recv_pos = b"", 0
        if not self.event_loop_io or bufsize >= self.IO_CHUNK:
            return super()._sock_recv(bufsize)
        data = super()._sock_recv(self.IO_CHUNK)
        if len(data) > bufsize:
            self._recv_buffer, self._recv_pos, self._recv_sock = data, bufsize, self._sock
            return data[:bufsize]
        return data

    def _packet_read(self) -> MQTTErrorCode:
        """On an event loop, a packet already whole in the buffer is taken in one step and handed to paho's
        ``_packet_handle`` as paho's own read would hand it; anything else (nothing buffered, a packet cut at
        the buffer's end, a packet begun by an earlier read, a malformed length) takes paho's path."""
        buffer, pos = self._recv_buffer, self._recv_pos
        if not self.event_loop_io or self._in_packet["command"] != 0 or self._recv_sock is not self._sock:
            return super()._packet_read()
        size = len(buffer)
        start = pos + 1  # the remaining length's first byte
        length, mult, index = 0, 1, start
        while True:
            if index >= size or index - start >= 4:
                return super()._packet_read()
            byte = buffer[index]
            index += 1
            length += (byte & 127) * mult
            mult *= 128
            if not byte & 128:
                break
        end = index + length
        if end > size:
            return super()._packet_read()
        self._recv_pos = end
        self._in_packet = {
            "command": buffer[pos],
            "have_remaining": 1,
            "remaining_count": list(buffer[start:index]),
            "remaining_mult": mult,
            "remaining_length": length,
            "packet": bytearray(buffer[index:end]),
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(b""),
            "to_process": 0,
            "pos": 0,
        }
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return rc

    def _packet_write(self) -> MQTTErrorCode:
        """On an event loop, the packets queued (a receipt and an acknowledgement per message) go out together,
        up to ``IO_CHUNK`` bytes in one system call where paho makes one per packet. A packet paho must act on
        once written (a QoS 0 PUBLISH, DISCONNECT) and the ones after it are left to paho's own path."""
        out = self._out_packet
        while self.event_loop_io and len(out) > 1:
            group: list[_OutPacket] = []
            size = 0
            while out and size < self.IO_CHUNK:
                head = out[0]
                kind = head["command"] & 0xF0
                if kind == mqtt.DISCONNECT or (kind == mqtt.PUBLISH and head["qos"] == 0):
                    break
                group.append(out.popleft())
                size += head["to_process"]
            if len(group) < 2:
                out.extendleft(group)
                break
            try:
                sent = self._sock_send(b"".join(p["packet"][p["pos"] :] for p in group))
            except (AttributeError, ValueError):
                out.extendleft(reversed(group))
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except BlockingIOError:
                out.extendleft(reversed(group))
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:
                out.extendleft(reversed(group))
                self._easy_log(mqtt.MQTT_LOG_ERR, "failed to send on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            for index, packet in enumerate(group):
                if sent < packet["to_process"]:  # a partial write: the rest goes first next time
                    packet["pos"] += sent
                    packet["to_process"] -= sent
                    out.extendleft(reversed(group[index:]))
                    break
                sent -= packet["to_process"]
                packet["pos"] += packet["to_process"]
                packet["to_process"] = 0
            with self._msgtime_mutex:
                self._last_msg_out = mqtt.time_func()
        return super()._packet_write()

    def _handle_publish(self) -> MQTTErrorCode:
        """The commonest packet of a QoS 1 subscriber, an MQTT 5 QoS 1 PUBLISH without properties (a device's
        readings), decoded in a few steps: paho builds a new ``Properties`` for each (its constructor builds its
        tables of every property), a tenth of the consumer's CPU. The message gets a shared, empty one; every
        other PUBLISH takes paho's own path. ``tests/test_mqtt_client.py`` compares both on every shape."""
        packet = self._in_packet["packet"]
        header = self._in_packet["command"]
        if self._protocol != mqtt.MQTTv5 or header & 0x06 != 0x02 or len(packet) < 2:
            return super()._handle_publish()
        end = 2 + ((packet[0] << 8) | packet[1])  # the topic's end: the message id and the properties follow
        if end == 2 or len(packet) < end + 3 or packet[end + 2] != 0:
            return super()._handle_publish()
        topic = bytes(packet[2:end])
        message = mqtt.MQTTMessage(mid=(packet[end] << 8) | packet[end + 1], topic=topic)
        message.dup = header & 0x08 != 0
        message.qos = 1
        message.retain = header & 0x01 != 0
        message.properties = _PUBLISH_NO_PROPERTIES
        message.payload = bytes(packet[end + 3 :])
        self._easy_log(
            mqtt.MQTT_LOG_DEBUG,
            "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', properties=%s, ...  (%d bytes)",
            message.dup, message.qos, message.retain, message.mid,
            topic.decode("utf-8", "replace"), message.properties, len(message.payload),
        )  # fmt: skip
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._send_puback(message.mid)

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        size = len(packet)
        if cmd == "PUBACK" and size == 2:
            reason = _PUBACK_TOOK[0x00]
        elif cmd == "PUBACK" and size == 3 and self._protocol == mqtt.MQTTv5 and packet[2] in _PUBACK_TOOK:
            reason = _PUBACK_TOOK[packet[2]]
        else:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, reason, _PUBACK_NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def new_client(
    url: str,
    client_id: str = "",
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    persistent: bool = False,
    manual_ack: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> Client:
    """A client for ``url`` (credentials from the URL unless given); not yet connected."""
    address = parse_mqtt_url(url)
    kwargs: dict[str, object] = {"client_id": client_id, "protocol": protocol, "manual_ack": manual_ack}
    if protocol != mqtt.MQTTv5:
        kwargs["clean_session"] = not persistent
    client = Client(CallbackAPIVersion.VERSION2, **kwargs)  # type: ignore[arg-type]
    user = username if username is not None else address.username
    if user is not None:
        client.username_pw_set(user, password if password is not None else address.password)
    if address.tls:
        client.tls_set()
    return client


def probe(url: str, timeout: float = 2.0, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311) -> bool:
    """True when the broker at ``url`` accepts a connection in ``protocol`` within ``timeout`` seconds (a broker
    that does not speak it closes the connection: False at once)."""
    address = parse_mqtt_url(url)
    client = new_client(url, protocol=protocol)
    accepted: list[bool] = []
    answered = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        accepted.append(not getattr(reason, "is_failure", False))
        answered.set()

    def on_disconnect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        answered.wait(timeout)
        return bool(accepted and accepted[0])
    finally:
        client.disconnect()
        client.loop_stop()


def negotiate(url: str, timeout: float = 3.0) -> MQTTProtocolVersion | None:
    """The protocol to speak to the broker at ``url``: MQTT 5 if it accepts it, else 3.1.1 if it accepts that
    (the embedded amqtt broker), or None when it accepts neither right now (down, restarting, refusing us): the
    caller asks again later rather than settling for 3.1.1 on a broker that merely was not up yet."""
    if probe(url, timeout, protocol=mqtt.MQTTv5):
        return mqtt.MQTTv5
    if probe(url, timeout, protocol=mqtt.MQTTv311):
        return mqtt.MQTTv311
    return None


class LoopDriver:
    """Drives a paho client from the asyncio event loop instead of paho's own network thread (paho's "external
    event loop" interface): the socket is watched with ``add_reader`` / ``add_writer``, keep-alive runs from a
    task, and a lost connection is re-established with backoff.

    Everything paho does then happens on the loop's thread: callbacks run there, and publishing or acknowledging
    queues a packet that the next writable event sends with everything else queued, where paho's thread would
    be woken through a socket pair for every packet and contend with the loop for the GIL. Only the blocking
    socket connect runs in a worker thread. A readable socket is read ``READ_BURST`` packets at a time, so that
    other work of the loop (the database's answers) waits for a few packets, not for everything that arrived.
    """

    READ_BURST = 32
    # A broker that accepted the TCP connection but sends no CONNACK within this many seconds (one shutting down,
    # or starting with a large persistence file to load) is connected to again, instead of waiting for paho's
    # keep-alive (the whole interval: 30 s for the consumer) while messages pile up.
    CONNACK_TIMEOUT_S = 5.0

    def __init__(
        self, client: Client, host: str, port: int, connect_kwargs: dict[str, Any], *, max_delay: float = 5.0
    ) -> None:
        self.client = client
        client.event_loop_io = True
        client.connect_async(host, port, **connect_kwargs)  # only records where to connect
        self.max_delay = max_delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._sock: socket.socket | None = None
        self._opened_at = 0.0  # when the socket was opened (loop time)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = asyncio.Event()
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._task = asyncio.create_task(self._keep_connected(), name="mqtt-network")

    async def stop(self, timeout: float = 5.0) -> None:
        """Send DISCONNECT (what is queued before it goes first), wait for the socket to close, stop."""
        self._stopping = True
        if self._sock is not None:
            self._closed.clear()
            self.client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- paho's socket callbacks: from the loop's thread, or from the worker thread while connecting -----------

    def _call(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._thread_id:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        def watch() -> None:
            assert self._loop is not None and isinstance(sock, socket.socket)
            self._sock = sock
            self._opened_at = self._loop.time()
            self._loop.add_reader(sock, self._read)

        self._call(watch)

    def _on_socket_close(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        def unwatch() -> None:
            assert self._loop is not None and isinstance(sock, socket.socket)
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            if self._sock is sock:
                self._sock = None
            self._closed.set()

        self._call(unwatch)

    def _on_register_write(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        def watch_write() -> None:
            assert self._loop is not None and isinstance(sock, socket.socket)
            if sock.fileno() >= 0:
                try:
                    self._loop.add_writer(sock, self.client.loop_write)
                except RuntimeError:
                    # uvloop closed its poll handle on a socket error (see ``_keep_connected``): the connection
                    # is gone; reading says so to paho, which closes it, and it is re-established
                    self._loop.call_soon(self._read)

        self._call(watch_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        def unwatch_write() -> None:
            assert self._loop is not None and isinstance(sock, socket.socket)
            self._loop.remove_writer(sock)

        self._call(unwatch_write)

    def _read(self) -> None:
        self.client.read_packets(self.READ_BURST)
        sock = self._sock
        # bytes already read (Client.event_loop_io), or decrypted, that the selector cannot see
        if self.client.buffered() or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            assert self._loop is not None
            self._loop.call_soon(self._read)

    async def _drain(self, bursts: int = 1000) -> None:
        """Read what the socket holds, a burst at a time with the loop's other work between bursts. After uvloop
        has dropped its watch of a reset socket, nothing else reads it: a backlog of messages the broker had sent
        before it went down was read 32 packets a second, and the end of the connection behind it was found only
        by keep-alive."""
        for _ in range(bursts):
            if self._sock is None or self.client.read_packets(self.READ_BURST) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            await asyncio.sleep(0)

    # --- connection and keep-alive -------------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        """Connect, and reconnect with backoff (1 s, doubling up to ``max_delay``: a broker back from a restart
        is found within seconds); every second, keep-alive, and a read of the socket. uvloop closes its poll
        handle on a socket error (POLLERR: a broker that exited resets the connection) without calling the reader
        again, so a reset that came after a read burst would only be noticed when keep-alive gives up (1.5 x the
        keep-alive interval), the consumer's acknowledgements lost meanwhile: reading all the socket holds
        (``_drain``) finds it within a second. A read with nothing to read costs one system call."""
        delay = 1.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self._sock is None:
                try:
                    await asyncio.to_thread(self.client.reconnect)
                    delay = 1.0
                except OSError as exc:
                    log.warning("MQTT connection failed; retrying", extra={"error": str(exc), "in_s": delay})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_delay)
                    continue
            await self._drain()
            sock = self._sock
            if sock is not None and not self.client.is_connected():
                if loop.time() - self._opened_at > self.CONNACK_TIMEOUT_S:
                    log.warning("MQTT broker did not answer the connection; connecting again")
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # paho reads the end of the stream and closes it
                    self._read()
            elif sock is not None:
                self.client.loop_misc()  # keep-alive pings, and notices a connection gone silent
            await asyncio.sleep(1.0)
