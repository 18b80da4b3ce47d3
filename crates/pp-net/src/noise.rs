//! The encrypted, authenticated transport: a `Noise_XX_25519_ChaChaPoly_BLAKE2b` handshake that
//! binds each side's ed25519 identity key to its Noise static key, then a byte stream cut into
//! Noise transport messages.
//!
//! Wire format (normative text: docs/protocol.md, "Encrypted transport (Noise)"):
//!
//! * every handshake and transport message is a 2-byte big-endian length `L` (1..=65,535)
//!   followed by `L` bytes;
//! * message 1 (initiator → responder) has an empty payload, message 2 carries the responder's
//!   96-byte identity proof, message 3 the initiator's;
//! * an identity proof is `ed25519 public key (32) ‖ signature (64)` where the signature covers
//!   `IDENTITY_CONTEXT ‖ the signer's own Noise static public key (32)`; the receiver checks it
//!   against the static key the handshake authenticated, so a proof cannot be replayed by a node
//!   that does not hold the matching static secret;
//! * afterwards the plaintext is an arbitrary byte stream (the usual 4-byte-length JSON frames),
//!   encrypted in chunks of at most [`MAX_PLAINTEXT_CHUNK`] bytes.
//!
//! [`handshake`] runs the handshake and returns a [`NoiseStream`], which implements tokio's
//! `AsyncRead` + `AsyncWrite`, so the framing codecs run on top of it unchanged.
//!
//! Failure is always final: a malformed handshake message, a bad proof, a transport message that
//! does not decrypt, or a stream cut in the middle of a message ends the connection. A
//! `NoiseStream` whose read side failed fails every later read too (it never resumes after a
//! failed decryption, see snow advisory GHSA-7g9j-g5jg-3vv3).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pp_ledger::{KeyPair, PublicKey, Signature};
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::NetError;

/// The Noise protocol name: XX pattern, X25519, ChaCha20-Poly1305, BLAKE2b.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
/// The Noise prologue; both sides must use the same bytes or the handshake fails.
pub const PROLOGUE: &[u8] = b"pp-ledger/noise/1";
/// The domain-separation prefix of the identity-proof signature.
pub const IDENTITY_CONTEXT: &[u8] = b"pp-ledger/noise-identity/1";
/// The largest Noise message (handshake or transport), excluding its 2-byte length prefix.
pub const MAX_NOISE_MESSAGE: usize = 65_535;
/// The most plaintext one transport message carries (the message minus the 16-byte AEAD tag).
pub const MAX_PLAINTEXT_CHUNK: usize = MAX_NOISE_MESSAGE - TAG_LEN;

/// Length of the ChaCha20-Poly1305 authentication tag.
const TAG_LEN: usize = 16;
/// Length of the 2-byte big-endian length prefix.
const LEN_PREFIX: usize = 2;
/// Length of an identity proof: ed25519 public key (32) + signature (64).
const PROOF_LEN: usize = 96;
/// Length of an X25519 key (public or secret).
const DH_LEN: usize = 32;

/// A node's transport identity: its ed25519 identity public key, a Noise static key pair
/// (X25519) and the 96-byte proof binding them. Cheap to clone (one `Arc`).
///
/// The ed25519 secret is used once, to sign the proof, and is not kept.
#[derive(Clone)]
pub struct NoiseIdentity {
    inner: Arc<IdentityInner>,
}

struct IdentityInner {
    identity: PublicKey,
    static_secret: [u8; DH_LEN],
    static_public: [u8; DH_LEN],
    proof: [u8; PROOF_LEN],
}

impl NoiseIdentity {
    /// A transport identity with a fresh random Noise static key, drawn from `rand`'s thread-local
    /// CSPRNG (ChaCha, seeded from the operating system).
    pub fn new(identity: &KeyPair) -> NoiseIdentity {
        NoiseIdentity::from_static_secret(identity, rand::random::<[u8; DH_LEN]>())
    }

    /// A transport identity with the given X25519 static secret (test vectors and tests; a node
    /// uses [`NoiseIdentity::new`]). The secret is clamped by X25519 as usual.
    pub fn from_static_secret(identity: &KeyPair, static_secret: [u8; 32]) -> NoiseIdentity {
        let static_public = x25519_public(&static_secret);
        let mut proof = [0u8; PROOF_LEN];
        proof[..32].copy_from_slice(&identity.public().0);
        proof[32..].copy_from_slice(&identity.sign(&identity_message(&static_public)).0);
        NoiseIdentity {
            inner: Arc::new(IdentityInner {
                identity: identity.public(),
                static_secret,
                static_public,
                proof,
            }),
        }
    }

    /// The ed25519 identity public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.identity
    }

    /// The Noise static public key (X25519).
    pub fn static_public(&self) -> [u8; 32] {
        self.inner.static_public
    }

    /// The 96-byte identity proof this node sends in the handshake.
    fn proof(&self) -> &[u8; PROOF_LEN] {
        &self.inner.proof
    }
}

impl fmt::Debug for NoiseIdentity {
    /// Prints the public keys only; the static secret never appears.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseIdentity")
            .field("identity", &self.inner.identity.to_hex())
            .field("static_public", &hex_lower(&self.inner.static_public))
            .finish_non_exhaustive()
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// X25519 public key of `secret` (Noise's DH, i.e. with the usual clamping).
fn x25519_public(secret: &[u8; DH_LEN]) -> [u8; DH_LEN] {
    let mut out = [0u8; DH_LEN];
    // The default resolver is compiled with `use-curve25519`, so this never returns `None`; the
    // fallback (all zeros) would only make every handshake fail, never panic.
    if let Some(mut dh) = DefaultResolver.resolve_dh(&DHChoice::Curve25519) {
        dh.set(secret);
        let public = dh.pubkey();
        if public.len() == DH_LEN {
            out.copy_from_slice(public);
        }
    }
    out
}

/// The bytes an identity proof signs: `IDENTITY_CONTEXT ‖ static_public`.
fn identity_message(static_public: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(IDENTITY_CONTEXT.len() + static_public.len());
    m.extend_from_slice(IDENTITY_CONTEXT);
    m.extend_from_slice(static_public);
    m
}

/// Checks a received identity proof against the remote static key that the handshake
/// authenticated, and returns the proven ed25519 identity.
fn verify_proof(proof: &[u8], remote_static: Option<&[u8]>) -> Result<PublicKey, NetError> {
    if proof.len() != PROOF_LEN {
        return Err(NetError::BadIdentityProof {
            reason: format!("proof is {} bytes, expected {PROOF_LEN}", proof.len()),
        });
    }
    let remote_static = remote_static.ok_or_else(|| NetError::HandshakeFailed {
        reason: "remote static key unknown after the message that carries it".into(),
    })?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&proof[..32]);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&proof[32..]);
    let key = PublicKey(key);
    key.verify(&identity_message(remote_static), &Signature(sig))
        .map_err(|e| NetError::BadIdentityProof {
            reason: e.to_string(),
        })?;
    Ok(key)
}

fn handshake_error(stage: &str, e: snow::Error) -> NetError {
    NetError::HandshakeFailed {
        reason: format!("{stage}: {e}"),
    }
}

/// Run the Noise XX handshake on `stream` as initiator (we dialed) or responder. Returns the
/// encrypted stream and the peer's *verified* ed25519 identity key.
///
/// No timeout inside: the caller bounds the whole handshake (Noise + `hello`) with one deadline.
/// The handshake reads exactly the bytes of its three messages from `stream`, so transport data
/// the peer sends right after message 3 is left for the returned [`NoiseStream`].
///
/// # Errors
///
/// * [`NetError::HandshakeFailed`]: a message of length 0, a message snow rejects (garbage,
///   wrong prologue, tampering), a payload in message 1, or end of stream mid-handshake;
/// * [`NetError::BadIdentityProof`]: the peer's proof is not 96 bytes or does not verify for the
///   static key the handshake authenticated;
/// * [`NetError::Io`]: any other I/O error of `stream`.
///
/// On error nothing more is sent; the caller drops (closes) the stream.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ours: &NoiseIdentity,
    initiator: bool,
) -> Result<(NoiseStream<S>, PublicKey), NetError> {
    handshake_with_ephemeral(stream, ours, initiator, None).await
}

/// [`handshake`] with a fixed ephemeral secret, for test vectors only: reusing an ephemeral key
/// destroys forward secrecy and, with the responder, key uniqueness.
#[doc(hidden)]
pub async fn handshake_with_ephemeral<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    ours: &NoiseIdentity,
    initiator: bool,
    ephemeral_secret: Option<[u8; 32]>,
) -> Result<(NoiseStream<S>, PublicKey), NetError> {
    let params: snow::params::NoiseParams = NOISE_PARAMS
        .parse()
        .map_err(|e| handshake_error("protocol name", e))?;
    let mut builder = snow::Builder::new(params)
        .local_private_key(&ours.inner.static_secret)
        .map_err(|e| handshake_error("static key", e))?
        .prologue(PROLOGUE)
        .map_err(|e| handshake_error("prologue", e))?;
    if let Some(e) = ephemeral_secret.as_ref() {
        builder = builder.fixed_ephemeral_key_for_testing_only(e);
    }
    let mut hs = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(|e| handshake_error("setup", e))?;

    let remote = if initiator {
        write_handshake_message(&mut stream, &mut hs, &[], 1).await?;
        let proof = read_handshake_message(&mut stream, &mut hs, 2).await?;
        let remote = verify_proof(&proof, hs.get_remote_static())?;
        write_handshake_message(&mut stream, &mut hs, ours.proof(), 3).await?;
        remote
    } else {
        let payload = read_handshake_message(&mut stream, &mut hs, 1).await?;
        if !payload.is_empty() {
            return Err(NetError::HandshakeFailed {
                reason: format!(
                    "message 1 carries a {}-byte payload, expected none",
                    payload.len()
                ),
            });
        }
        write_handshake_message(&mut stream, &mut hs, ours.proof(), 2).await?;
        let proof = read_handshake_message(&mut stream, &mut hs, 3).await?;
        verify_proof(&proof, hs.get_remote_static())?
    };
    let transport = hs
        .into_transport_mode()
        .map_err(|e| handshake_error("split", e))?;
    Ok((NoiseStream::new(stream, transport, remote), remote))
}

/// Writes handshake message `n` (with its length prefix) and flushes.
async fn write_handshake_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    hs: &mut snow::HandshakeState,
    payload: &[u8],
    n: u8,
) -> Result<(), NetError> {
    // Our handshake messages are at most 32 + 48 + 96 + 16 = 192 bytes; 1 KiB is ample.
    let mut buf = vec![0u8; LEN_PREFIX + 1024];
    let len = hs
        .write_message(payload, &mut buf[LEN_PREFIX..])
        .map_err(|e| handshake_error(&format!("writing message {n}"), e))?;
    let prefix = u16::try_from(len).map_err(|_| NetError::HandshakeFailed {
        reason: format!("message {n} would be {len} bytes"),
    })?;
    buf[..LEN_PREFIX].copy_from_slice(&prefix.to_be_bytes());
    stream.write_all(&buf[..LEN_PREFIX + len]).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads handshake message `n` (exactly its prefix and body, nothing more) and returns its
/// decrypted payload.
async fn read_handshake_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    hs: &mut snow::HandshakeState,
    n: u8,
) -> Result<Vec<u8>, NetError> {
    // A peer that goes away mid-handshake proves nothing against it (it may have crashed): an
    // I/O error, not a failed handshake, which would score its address.
    let eof = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            NetError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed before handshake message {n} was complete"),
            ))
        } else {
            NetError::Io(e)
        }
    };
    let mut prefix = [0u8; LEN_PREFIX];
    stream.read_exact(&mut prefix).await.map_err(eof)?;
    let len = usize::from(u16::from_be_bytes(prefix));
    if len == 0 {
        return Err(NetError::HandshakeFailed {
            reason: format!("message {n} has length 0"),
        });
    }
    // At most 65,535 bytes, bounded by the 2-byte prefix.
    let mut message = vec![0u8; len];
    // Someone speaking HTTP (we dialed an HTTP port, or an HTTP client dialed us) sends ASCII
    // whose first two bytes read as a length of about 18,000: look at the next few bytes before
    // waiting for that many, and say what happened instead of timing out or failing obscurely.
    let head = HTTP_SNIFF_LEN.min(len);
    stream.read_exact(&mut message[..head]).await.map_err(eof)?;
    if let Some(reason) = http_spoken(&prefix, &message[..head]) {
        return Err(NetError::HandshakeFailed { reason });
    }
    stream.read_exact(&mut message[head..]).await.map_err(eof)?;
    let mut payload = vec![0u8; len];
    let plain = hs
        .read_message(&message, &mut payload)
        .map_err(|e| handshake_error(&format!("reading message {n}"), e))?;
    payload.truncate(plain);
    Ok(payload)
}

/// Bytes after the length prefix looked at to recognise HTTP (`HTTP/`, `GET /`, ...).
const HTTP_SNIFF_LEN: usize = 4;

/// The starts of what an HTTP server answers and of the requests an HTTP client sends.
const HTTP_STARTS: [&[u8]; 8] = [
    b"HTTP/",
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
];

/// If `prefix ‖ head` is the start of HTTP, the reason to give: the peer speaks HTTP, not pp-net.
/// (A real handshake message is at most a few hundred bytes: its prefix starts with a zero
/// byte, never with an ASCII letter.)
fn http_spoken(prefix: &[u8; LEN_PREFIX], head: &[u8]) -> Option<String> {
    let seen = [prefix.as_slice(), head].concat();
    let start = HTTP_STARTS
        .iter()
        .find(|s| seen.starts_with(&s[..s.len().min(seen.len())]))?;
    Some(if start.starts_with(b"HTTP") {
        "the peer spoke HTTP, not pp-net: is this its HTTP API port rather than its P2P port?"
            .to_string()
    } else {
        "an HTTP client connected to the P2P port (pp-net speaks Noise, not HTTP)".to_string()
    })
}

/// What the read side has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadStatus {
    /// Messages may still arrive.
    Open,
    /// The peer closed the stream cleanly between two messages.
    Eof,
    /// A message failed (bad length, decryption failure, cut off); every later read fails.
    Failed,
}

/// An encrypted byte stream over `S`, produced by [`handshake`]. Implements tokio's `AsyncRead`
/// and `AsyncWrite` (and is `Unpin` when `S` is), so the frame codecs run on top unchanged.
///
/// Memory is bounded: one ciphertext message being received (≤ 2 + 65,535 bytes), one decrypted
/// message being served (≤ 65,519 bytes) and one encrypted message being sent (≤ 2 + 65,535
/// bytes). A write is accepted only after the previous encrypted message has been handed to `S`
/// in full.
pub struct NoiseStream<S> {
    inner: S,
    transport: snow::TransportState,
    remote: PublicKey,
    /// Ciphertext received, `rx_start..rx_end` not yet consumed.
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    /// Plaintext of the last decrypted message, `plain_start..plain_end` not yet served.
    plain: Box<[u8]>,
    plain_start: usize,
    plain_end: usize,
    status: ReadStatus,
    /// One encrypted message with its length prefix, `tx_start..tx_end` not yet written.
    tx: Box<[u8]>,
    tx_start: usize,
    tx_end: usize,
}

impl<S> NoiseStream<S> {
    fn new(inner: S, transport: snow::TransportState, remote: PublicKey) -> NoiseStream<S> {
        NoiseStream {
            inner,
            transport,
            remote,
            rx: vec![0u8; LEN_PREFIX + MAX_NOISE_MESSAGE].into_boxed_slice(),
            rx_start: 0,
            rx_end: 0,
            plain: vec![0u8; MAX_PLAINTEXT_CHUNK].into_boxed_slice(),
            plain_start: 0,
            plain_end: 0,
            status: ReadStatus::Open,
            tx: vec![0u8; LEN_PREFIX + MAX_NOISE_MESSAGE].into_boxed_slice(),
            tx_start: 0,
            tx_end: 0,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The peer's ed25519 identity key, as proven in the handshake.
    pub fn remote_identity(&self) -> PublicKey {
        self.remote
    }

    /// Marks the read side failed and returns the error to report.
    fn fail(&mut self, kind: io::ErrorKind, msg: &'static str) -> io::Error {
        self.status = ReadStatus::Failed;
        self.plain_start = 0;
        self.plain_end = 0;
        io::Error::new(kind, msg)
    }

    /// Decrypts the next whole message in the receive buffer into `plain`, if one is there.
    /// Returns `Ok(true)` if a message was consumed. Only called when `plain` is empty, so a
    /// failure never leaves any plaintext to serve.
    fn decrypt_buffered(&mut self) -> io::Result<bool> {
        let avail = self.rx_end - self.rx_start;
        if avail < LEN_PREFIX {
            return Ok(false);
        }
        let len = usize::from(u16::from_be_bytes([
            self.rx[self.rx_start],
            self.rx[self.rx_start + 1],
        ]));
        if len == 0 {
            return Err(self.fail(io::ErrorKind::InvalidData, "noise message of length 0"));
        }
        if avail < LEN_PREFIX + len {
            return Ok(false);
        }
        let body = self.rx_start + LEN_PREFIX..self.rx_start + LEN_PREFIX + len;
        match self.transport.read_message(&self.rx[body], &mut self.plain) {
            Ok(n) => {
                self.plain_start = 0;
                self.plain_end = n;
                self.rx_start += LEN_PREFIX + len;
                if self.rx_start == self.rx_end {
                    self.rx_start = 0;
                    self.rx_end = 0;
                }
                Ok(true)
            }
            Err(_) => Err(self.fail(
                io::ErrorKind::InvalidData,
                "noise transport message failed to decrypt",
            )),
        }
    }

    /// Encrypts `data` (at most `MAX_PLAINTEXT_CHUNK` bytes, non-empty) into the send buffer,
    /// which must be empty.
    fn encrypt_into_tx(&mut self, data: &[u8]) -> io::Result<()> {
        let len = self
            .transport
            .write_message(data, &mut self.tx[LEN_PREFIX..])
            .map_err(|e| io::Error::other(format!("noise encryption failed: {e}")))?;
        // snow refuses messages over 65,535 bytes, so this conversion cannot fail.
        let prefix = u16::try_from(len)
            .map_err(|_| io::Error::other("noise message longer than 65,535 bytes"))?;
        self.tx[..LEN_PREFIX].copy_from_slice(&prefix.to_be_bytes());
        self.tx_start = 0;
        self.tx_end = LEN_PREFIX + len;
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> NoiseStream<S> {
    /// Writes the pending encrypted message (if any) to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tx_start < self.tx_end {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.tx[self.tx_start..self.tx_end])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "inner stream accepted no bytes",
                )));
            }
            self.tx_start += n;
        }
        self.tx_start = 0;
        self.tx_end = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S> fmt::Debug for NoiseStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoiseStream")
            .field("remote_identity", &self.remote.to_hex())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NoiseStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.status == ReadStatus::Failed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "noise stream failed earlier",
                )));
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.plain_start < this.plain_end {
                let n = buf.remaining().min(this.plain_end - this.plain_start);
                buf.put_slice(&this.plain[this.plain_start..this.plain_start + n]);
                this.plain_start += n;
                return Poll::Ready(Ok(()));
            }
            if this.status == ReadStatus::Eof {
                return Poll::Ready(Ok(()));
            }
            if this.decrypt_buffered()? {
                continue;
            }
            // No whole message buffered: move the partial one to the front and read more. The
            // buffer holds a whole maximum message, so there is always room after compaction.
            if this.rx_start > 0 {
                this.rx.copy_within(this.rx_start..this.rx_end, 0);
                this.rx_end -= this.rx_start;
                this.rx_start = 0;
            }
            let mut rb = ReadBuf::new(&mut this.rx[this.rx_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                if this.rx_end == 0 {
                    this.status = ReadStatus::Eof;
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(this.fail(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a noise message",
                )));
            }
            this.rx_end += n;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoiseStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // At most one encrypted message is pending: hand it to the inner stream first.
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_PLAINTEXT_CHUNK);
        this.encrypt_into_tx(&buf[..n])?;
        // Start sending right away. The `n` bytes are accepted whatever happens here: `Pending`
        // is finished by the next write or flush, and an error shows up there too.
        let _ = this.poll_drain(cx);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u8, static_seed: u8) -> NoiseIdentity {
        NoiseIdentity::from_static_secret(&KeyPair::from_seed([seed; 32]), [static_seed; 32])
    }

    /// Two connected `NoiseStream`s over an in-memory pipe.
    async fn pair(
        capacity: usize,
    ) -> (
        NoiseStream<tokio::io::DuplexStream>,
        NoiseStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(capacity);
        let (ia, ib) = (identity(1, 11), identity(2, 22));
        let (ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
        (ra.unwrap().0, rb.unwrap().0)
    }

    #[test]
    fn streams_can_move_between_tasks() {
        fn assert_send<T: Send + Unpin>() {}
        assert_send::<NoiseStream<tokio::net::TcpStream>>();
        assert_send::<NoiseIdentity>();
    }

    #[test]
    fn debug_prints_no_secret() {
        let id = identity(1, 0xab);
        let s = format!("{id:?}");
        assert!(!s.contains(&"ab".repeat(32)), "{s}");
        assert!(s.contains(&id.public_key().to_hex()));
    }

    #[test]
    fn proof_is_bound_to_the_static_key() {
        let id = identity(1, 11);
        let other = identity(1, 12);
        assert_eq!(
            verify_proof(id.proof(), Some(&id.static_public())).unwrap(),
            id.public_key()
        );
        assert!(matches!(
            verify_proof(id.proof(), Some(&other.static_public())),
            Err(NetError::BadIdentityProof { .. })
        ));
        assert!(matches!(
            verify_proof(&id.proof()[..95], Some(&id.static_public())),
            Err(NetError::BadIdentityProof { .. })
        ));
    }

    #[tokio::test]
    async fn a_transport_message_of_length_zero_is_rejected() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ia, ib) = (identity(1, 11), identity(2, 22));
        let (ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
        let (mut sa, _) = ra.unwrap();
        let (sb, _) = rb.unwrap();
        // Write a raw zero length on the wire, bypassing the encryption.
        let mut raw = sb.inner;
        raw.write_all(&[0, 0]).await.unwrap();
        let mut out = [0u8; 16];
        let e = sa.read(&mut out).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            sa.read(&mut out).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn a_write_never_produces_a_message_over_the_maximum() {
        // A small pipe, so that the encrypted message stays (partly) pending and can be inspected.
        let (mut a, b) = pair(1024).await;
        let data = vec![7u8; 200_000];
        let n = a.write(&data).await.unwrap();
        assert_eq!(n, MAX_PLAINTEXT_CHUNK);
        assert_eq!(a.tx_end, LEN_PREFIX + MAX_NOISE_MESSAGE);
        assert_eq!(
            usize::from(u16::from_be_bytes([a.tx[0], a.tx[1]])),
            MAX_NOISE_MESSAGE
        );
        // snow itself refuses to produce a longer message.
        let mut big = vec![0u8; MAX_NOISE_MESSAGE + 100];
        assert!(a
            .transport
            .write_message(&data[..MAX_PLAINTEXT_CHUNK + 1], &mut big)
            .is_err());
        drop(b);
    }

    #[tokio::test]
    async fn clean_eof_between_messages_and_cut_message() {
        let (mut a, b) = pair(1 << 16).await;
        let mut raw = b.inner;
        raw.shutdown().await.unwrap();
        let mut out = [0u8; 4];
        assert_eq!(a.read(&mut out).await.unwrap(), 0);
        assert_eq!(a.read(&mut out).await.unwrap(), 0);

        let (mut a, b) = pair(1 << 16).await;
        let mut raw = b.inner;
        raw.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
        raw.shutdown().await.unwrap();
        let e = a.read(&mut out).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn handshake_eof_is_an_io_error_not_a_failed_handshake() {
        let (a, b) = tokio::io::duplex(1024);
        drop(b);
        let r = handshake(a, &identity(1, 11), false).await;
        assert!(
            matches!(&r, Err(NetError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{r:?}"
        );
    }

    /// Dialing an HTTP port: the server answers our message 1 with `HTTP/1.1 400 ...` and keeps
    /// the connection open. The dialer says at once that the peer spoke HTTP, instead of
    /// waiting for 18,516 bytes ("HT" read as a length) or misreporting a frame size.
    #[tokio::test]
    async fn an_http_server_is_recognised_by_the_dialer_at_once() {
        let (a, mut b) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut m1 = [0u8; 34];
            b.read_exact(&mut m1).await.unwrap();
            b.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            // Keep the stream open: only the sniffing can end the handshake early.
            b
        });
        let r = handshake(a, &identity(1, 11), true).await;
        let Err(NetError::HandshakeFailed { reason }) = r.map(|_| ()) else {
            panic!("expected a failed handshake");
        };
        assert!(
            reason.contains("spoke HTTP") && reason.contains("HTTP API port"),
            "{reason}"
        );
        drop(server.await.unwrap());
    }

    #[tokio::test]
    async fn an_http_client_on_the_p2p_port_is_recognised() {
        let (a, mut b) = tokio::io::duplex(4096);
        b.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let r = handshake(a, &identity(1, 11), false).await;
        let Err(NetError::HandshakeFailed { reason }) = r.map(|_| ()) else {
            panic!("expected a failed handshake");
        };
        assert!(reason.contains("HTTP client"), "{reason}");
        drop(b);
    }

    #[test]
    fn real_handshake_prefixes_are_never_taken_for_http() {
        for len in [32u16, 96, 192, 1024, 65_535] {
            let prefix = len.to_be_bytes();
            assert!(
                http_spoken(&prefix, &[0x47, 0x45, 0x54, 0x20]).is_none(),
                "{len}"
            );
        }
        assert!(http_spoken(b"HT", b"TP/1").is_some());
        assert!(http_spoken(b"PO", b"ST /").is_some());
        assert!(http_spoken(b"HT", b"ML\n\n").is_none());
    }
}
