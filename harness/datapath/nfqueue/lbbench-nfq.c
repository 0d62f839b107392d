// lbbench-nfq: lbbench's user-space maglev load balancer on NFQUEUE.
//
// The kernel queues packets to the VIP — every packet (stateless, the default) or only a flow's
// first one (the driver's conntrack mode marks the rest from conntrack); we hash the 5-tuple into a
// maglev table of the active backends and accept with fwmark = backend + 1, which policy routing
// turns into "send to that backend". Single-threaded on purpose: one queue did ~90k verdicts/s
// here, and a single thread makes the table swap trivially atomic; in stateless mode that rate is
// the LB's ceiling, which is what a benchmark of this design should show.
//
//   lbbench-nfq --queue N --table-size M --backends K [--active LIST] --control SOCK [--stats FILE]
//   lbbench-nfq --control SOCK --send COMMAND          (prints the reply; exit 0 on "ok")
//   lbbench-nfq --dump-table --table-size M --backends K [--active LIST]    (no root needed)
//   lbbench-nfq --selftest | --version
//
// Control socket (Unix stream, one command per line, one reply line each: "ok …" or "err …"):
//   active 0,2,3   the active backend indices ("active -" or "active" for none): rebuild the table
//   stats          counters as one JSON object
//   table          the current maglev table as a JSON array
//   version        build information
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define PROG "lbbench-nfq"
#define PROG_VERSION "1.0"
#ifndef NFQ_LIB_VERSION
#define NFQ_LIB_VERSION "unknown"
#endif
#ifndef SRC_SHA
#define SRC_SHA "unknown"
#endif

#define MAX_BACKENDS 4096
#define MAX_TABLE_SIZE 1000003u
#define MAX_CLIENTS 8
#define CLIENT_BUF 8192
// IPv4 header (≤ 60 bytes) + the ports; IPv6's fixed header + ports is 44.
#define COPY_RANGE 128
// Seeds of the two backend hashes (maglev's offset and skip) and of the flow hash: any distinct
// constants; fixed so a table is reproducible across runs and comparable with --dump-table.
#define SEED_OFFSET 0x6c62626fu
#define SEED_SKIP 0x736b6970u
#define SEED_FLOW 0x666c6f77u

// ---------------------------------------------------------------------------------------------
// Hashing: MurmurHash3 x86_32 (Austin Appleby, public domain).

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static uint32_t murmur3_32(const void *key, size_t len, uint32_t seed) {
  const uint8_t *data = key;
  const size_t nblocks = len / 4;
  const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  uint32_t h = seed;
  for (size_t i = 0; i < nblocks; i++) {
    uint32_t k;
    memcpy(&k, data + i * 4, 4); // unaligned-safe; little-endian hosts only (x86_64, arm64)
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const uint8_t *tail = data + nblocks * 4;
  uint32_t k = 0;
  switch (len & 3) {
  case 3:
    k ^= (uint32_t)tail[2] << 16;
    /* fall through */
  case 2:
    k ^= (uint32_t)tail[1] << 8;
    /* fall through */
  case 1:
    k ^= tail[0];
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
  }
  h ^= (uint32_t)len;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Maglev (Eisenbud et al., NSDI 2016, section 3.4 "Pseudocode 1").

static bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
    if (n % d == 0) return false;
  return true;
}

// Each backend's permutation comes from its index, never its position among the active ones:
// that is what keeps a backend's preferred entries when others come and go.
static void backend_perm(uint32_t idx, uint32_t m, uint32_t *offset, uint32_t *skip) {
  char name[16];
  int n = snprintf(name, sizeof name, "be%u", idx);
  *offset = murmur3_32(name, (size_t)n, SEED_OFFSET) % m;
  *skip = murmur3_32(name, (size_t)n, SEED_SKIP) % (m - 1) + 1;
}

// A new table (entries -1 when no backend is active); NULL only when out of memory.
static int32_t *maglev_build(uint32_t m, uint32_t k, const bool *active) {
  int32_t *t = malloc(sizeof *t * m);
  uint32_t *offset = calloc(k ? k : 1, sizeof *offset);
  uint32_t *skip = calloc(k ? k : 1, sizeof *skip);
  uint32_t *next = calloc(k ? k : 1, sizeof *next);
  if (!t || !offset || !skip || !next) {
    free(t), free(offset), free(skip), free(next);
    return NULL;
  }
  for (uint32_t c = 0; c < m; c++) t[c] = -1;
  uint32_t n_active = 0;
  for (uint32_t i = 0; i < k; i++) {
    if (!active[i]) continue;
    n_active++;
    backend_perm(i, m, &offset[i], &skip[i]);
  }
  uint32_t filled = 0;
  while (n_active && filled < m) {
    for (uint32_t i = 0; i < k && filled < m; i++) {
      if (!active[i]) continue;
      uint32_t c;
      // m is prime and 1 ≤ skip < m, so each permutation visits every entry: this terminates.
      do {
        c = (uint32_t)(((uint64_t)offset[i] + (uint64_t)next[i] * skip[i]) % m);
        next[i]++;
      } while (t[c] >= 0);
      t[c] = (int32_t)i;
      filled++;
    }
  }
  free(offset), free(skip), free(next);
  return t;
}

// ---------------------------------------------------------------------------------------------
// State

struct stats {
  uint64_t packets, accepted, no_backend, unparsed, enobufs, verdict_errors, rebuilds;
  uint64_t backend_packets[MAX_BACKENDS];
};

static struct {
  uint32_t queue, table_size, backends, queue_maxlen;
  const char *control_path, *stats_path;
  bool active[MAX_BACKENDS];
  int32_t *table;
  struct stats st;
  struct timespec started;
} g = { .queue_maxlen = 4096 };

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static bool parse_u32(const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v > UINT32_MAX || *s == '-') return false;
  *out = (uint32_t)v;
  return true;
}

// "0,2,3"; "" or "-" is the empty set. On error, writes why into err.
static bool parse_active(const char *s, uint32_t k, bool *out, char *err, size_t errlen) {
  bool set[MAX_BACKENDS] = { false };
  while (*s == ' ') s++;
  if (*s && strcmp(s, "-") != 0) {
    char buf[CLIENT_BUF];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      uint32_t v;
      if (!parse_u32(tok, &v)) return snprintf(err, errlen, "not a backend index: \"%s\"", tok), false;
      if (v >= k) return snprintf(err, errlen, "backend %u out of range (backends=%u)", v, k), false;
      set[v] = true;
    }
  }
  memcpy(out, set, sizeof(bool) * k);
  return true;
}

static size_t format_active(char *buf, size_t len, const bool *active, uint32_t k) {
  size_t n = 0;
  buf[0] = 0;
  for (uint32_t i = 0; i < k && n < len; i++)
    if (active[i]) n += (size_t)snprintf(buf + n, len - n, "%s%u", n ? "," : "", i);
  if (!n) n = (size_t)snprintf(buf, len, "-");
  return n < len ? n : len - 1;
}

// Build first, swap after: a failed build leaves the running table untouched.
static bool set_active(const bool *active) {
  int32_t *t = maglev_build(g.table_size, g.backends, active);
  if (!t) return false;
  int32_t *old = g.table;
  memcpy(g.active, active, sizeof(bool) * g.backends);
  g.table = t;
  free(old);
  g.st.rebuilds++;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Packets

// The flow hash of an IPv4/IPv6 packet: addresses, protocol and, for unfragmented TCP/UDP, ports.
// Key layout: source and destination address, then one word of ports, then one of protocol.
static bool flow_hash(const uint8_t *p, int len, uint32_t *h) {
  uint32_t key[10] = { 0 };
  size_t words;
  uint8_t proto;
  int l4 = -1;
  if (len < 1) return false;
  if ((p[0] >> 4) == 4) {
    if (len < 20) return false;
    uint16_t frag = (uint16_t)(p[6] << 8 | p[7]);
    proto = p[9];
    memcpy(&key[0], p + 12, 8);
    words = 4;
    // Only a first fragment carries ports; fragmented datagrams hash on addresses alone.
    if ((frag & 0x3fff) == 0) l4 = (p[0] & 0x0f) * 4;
  } else if ((p[0] >> 4) == 6) {
    if (len < 40) return false;
    proto = p[6];
    memcpy(&key[0], p + 8, 32);
    words = 10;
    l4 = 40; // extension headers are not walked: with one, proto is not TCP/UDP and ports are skipped
  } else {
    return false;
  }
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 >= 20 && len >= l4 + 4) memcpy(&key[words - 2], p + l4, 4);
  key[words - 1] = proto;
  *h = murmur3_32(key, words * 4, SEED_FLOW);
  return true;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg, (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  unsigned char *payload = NULL;
  int len = nfq_get_payload(nfa, &payload);
  uint32_t h;
  int rc;
  g.st.packets++;
  if (len <= 0 || !flow_hash(payload, len, &h)) {
    // Not ours to judge: let the kernel route it unmarked, and count it.
    g.st.unparsed++;
    rc = nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  } else {
    int32_t b = g.table[h % g.table_size];
    if (b < 0) {
      g.st.no_backend++;
      rc = nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
    } else {
      g.st.accepted++;
      g.st.backend_packets[b]++;
      rc = nfq_set_verdict2(qh, id, NF_ACCEPT, (uint32_t)b + 1, 0, NULL);
    }
  }
  if (rc < 0) g.st.verdict_errors++;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Stats and control

static double uptime(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - g.started.tv_sec) + (double)(now.tv_nsec - g.started.tv_nsec) / 1e9;
}

// Appends to a growing buffer; the caller frees. Returns NULL on allocation failure.
static char *stats_json(void) {
  size_t cap = 512 + (size_t)g.backends * 48;
  char *b = malloc(cap);
  if (!b) return NULL;
  uint32_t *shares = calloc(g.backends ? g.backends : 1, sizeof *shares);
  if (!shares) return free(b), NULL;
  for (uint32_t c = 0; c < g.table_size; c++)
    if (g.table[c] >= 0) shares[g.table[c]]++;
  size_t n = (size_t)snprintf(b, cap,
                              "{\"version\":\"" PROG_VERSION "\",\"queue\":%u,\"table_size\":%u,\"backends\":%u,"
                              "\"uptime_s\":%.3f,\"packets\":%llu,\"accepted\":%llu,\"no_backend\":%llu,"
                              "\"unparsed\":%llu,\"enobufs\":%llu,\"verdict_errors\":%llu,\"rebuilds\":%llu,\"active\":[",
                              g.queue, g.table_size, g.backends, uptime(), (unsigned long long)g.st.packets,
                              (unsigned long long)g.st.accepted, (unsigned long long)g.st.no_backend,
                              (unsigned long long)g.st.unparsed, (unsigned long long)g.st.enobufs,
                              (unsigned long long)g.st.verdict_errors, (unsigned long long)g.st.rebuilds);
  bool first = true;
  for (uint32_t i = 0; i < g.backends; i++)
    if (g.active[i]) n += (size_t)snprintf(b + n, cap - n, "%s%u", first ? "" : ",", i), first = false;
  n += (size_t)snprintf(b + n, cap - n, "],\"backend_packets\":[");
  for (uint32_t i = 0; i < g.backends; i++)
    n += (size_t)snprintf(b + n, cap - n, "%s%llu", i ? "," : "", (unsigned long long)g.st.backend_packets[i]);
  n += (size_t)snprintf(b + n, cap - n, "],\"table_shares\":[");
  for (uint32_t i = 0; i < g.backends; i++) n += (size_t)snprintf(b + n, cap - n, "%s%u", i ? "," : "", shares[i]);
  snprintf(b + n, cap - n, "]}");
  free(shares);
  return b;
}

static char *table_json(const int32_t *t, uint32_t m) {
  char *b = malloc((size_t)m * 6 + 8);
  if (!b) return NULL;
  size_t n = 0;
  b[n++] = '[';
  for (uint32_t c = 0; c < m; c++) n += (size_t)sprintf(b + n, "%s%d", c ? "," : "", t[c]);
  b[n++] = ']';
  b[n] = 0;
  return b;
}

// Written whole and renamed, so a reader never sees half a file; it outlives the process.
static void write_stats_file(void) {
  if (!g.stats_path) return;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", g.stats_path);
  char *js = stats_json();
  if (!js) return;
  FILE *f = fopen(tmp, "w");
  if (f) {
    fprintf(f, "%s\n", js);
    if (fclose(f) == 0) rename(tmp, g.stats_path);
  }
  free(js);
}

struct client {
  int fd;
  size_t len;
  char buf[CLIENT_BUF];
};
static struct client clients[MAX_CLIENTS];

static void client_close(struct client *c) {
  close(c->fd);
  c->fd = -1;
  c->len = 0;
}

static void reply(struct client *c, const char *fmt, ...) {
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) return client_close(c);
  // Replies are small and clients read them at once; a client that does not is dropped rather
  // than allowed to stall the datapath.
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, s + off, (size_t)(n - off), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      client_close(c);
      break;
    }
    off += w;
  }
  free(s);
}

static void handle_command(struct client *c, char *line) {
  size_t l = strlen(line);
  while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
  char *arg = strchr(line, ' ');
  if (arg) *arg++ = 0;
  else arg = line + l;
  if (strcmp(line, "active") == 0) {
    bool next[MAX_BACKENDS];
    char err[256];
    if (!parse_active(arg, g.backends, next, err, sizeof err)) return reply(c, "err %s\n", err);
    if (!set_active(next)) return reply(c, "err out of memory\n");
    char list[CLIENT_BUF];
    format_active(list, sizeof list, g.active, g.backends);
    fprintf(stderr, PROG ": active %s (rebuild %llu)\n", list, (unsigned long long)g.st.rebuilds);
    return reply(c, "ok active=%s rebuilds=%llu\n", list, (unsigned long long)g.st.rebuilds);
  }
  if (strcmp(line, "stats") == 0) {
    char *js = stats_json();
    if (!js) return reply(c, "err out of memory\n");
    reply(c, "ok %s\n", js);
    return free(js);
  }
  if (strcmp(line, "table") == 0) {
    char *js = table_json(g.table, g.table_size);
    if (!js) return reply(c, "err out of memory\n");
    reply(c, "ok %s\n", js);
    return free(js);
  }
  if (strcmp(line, "version") == 0)
    return reply(c, "ok " PROG " " PROG_VERSION " (libnetfilter_queue " NFQ_LIB_VERSION ", source " SRC_SHA
                    ", gcc " __VERSION__ ")\n");
  reply(c, "err unknown command \"%s\" (active LIST | stats | table | version)\n", line);
}

static void client_read(struct client *c) {
  ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (r <= 0) return client_close(c);
  c->len += (size_t)r;
  c->buf[c->len] = 0;
  char *start = c->buf, *nl;
  while (c->fd >= 0 && (nl = strchr(start, '\n'))) {
    *nl = 0;
    handle_command(c, start);
    start = nl + 1;
  }
  if (c->fd < 0) return;
  c->len = (size_t)(c->buf + c->len - start);
  memmove(c->buf, start, c->len);
  if (c->len >= sizeof c->buf - 1) {
    reply(c, "err line too long\n");
    if (c->fd >= 0) client_close(c);
  }
}

static int control_listen(const char *path) {
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof sa.sun_path) die("control socket path too long (max %zu): %s", sizeof sa.sun_path - 1, path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket(AF_UNIX): %s", strerror(errno));
  unlink(path); // a socket file left by a killed predecessor would make bind fail
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind %s: %s", path, strerror(errno));
  if (listen(fd, 16) < 0) die("listen %s: %s", path, strerror(errno));
  return fd;
}

// ---------------------------------------------------------------------------------------------
// Modes

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " --queue N --table-size M --backends K [--active LIST] --control SOCK [--stats FILE]\n"
          "                  [--queue-maxlen L]\n"
          "       " PROG " --control SOCK --send COMMAND\n"
          "       " PROG " --dump-table --table-size M --backends K [--active LIST]\n"
          "       " PROG " --selftest | --version\n"
          "LIST is comma-separated backend indices (default: all); M must be prime.\n");
}

static int selftest(void) {
  int fails = 0;
#define CHECK(cond, ...)                                                                                               \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      fprintf(stderr, "selftest: " __VA_ARGS__);                                                                       \
      fprintf(stderr, "\n");                                                                                           \
      fails++;                                                                                                         \
    }                                                                                                                  \
  } while (0)
  // Reference values of MurmurHash3_x86_32.
  CHECK(murmur3_32("", 0, 0) == 0, "murmur3(\"\",0)");
  CHECK(murmur3_32("", 0, 1) == 0x514e28b7u, "murmur3(\"\",1)");
  CHECK(murmur3_32("test", 4, 0) == 0xba6bd213u, "murmur3(\"test\",0)");
  CHECK(murmur3_32("Hello, world!", 13, 0x9747b28cu) == 0x24884cbau, "murmur3(\"Hello, world!\")");
  CHECK(is_prime(997) && is_prime(65537) && !is_prime(1) && !is_prime(1001), "is_prime");
  bool all[5] = { true, true, true, true, true };
  int32_t *t = maglev_build(997, 5, all);
  uint32_t share[5] = { 0 };
  for (uint32_t c = 0; t && c < 997; c++) {
    CHECK(t[c] >= 0 && t[c] < 5, "entry %u = %d", c, t[c]);
    if (t[c] >= 0 && t[c] < 5) share[t[c]]++;
  }
  for (int i = 0; i < 5; i++) CHECK(share[i] >= 199 && share[i] <= 200, "share of %d is %u", i, share[i]);
  free(t);
  if (!fails) printf("selftest ok\n");
  return fails ? 1 : 0;
#undef CHECK
}

static int dump_table(void) {
  int32_t *t = maglev_build(g.table_size, g.backends, g.active);
  if (!t) die("out of memory");
  char *js = table_json(t, g.table_size);
  if (!js) die("out of memory");
  printf("{\"table_size\":%u,\"backends\":%u,\"active\":[", g.table_size, g.backends);
  bool first = true;
  for (uint32_t i = 0; i < g.backends; i++)
    if (g.active[i]) printf("%s%u", first ? "" : ",", i), first = false;
  printf("],\"table\":%s}\n", js);
  free(js);
  free(t);
  return 0;
}

// Client mode: one command, its reply on stdout. The driver talks to the program through this
// rather than a socket library of its own, so it works on any host the program runs on.
static int send_command(const char *path, const char *cmd) {
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof sa.sun_path) die("control socket path too long: %s", path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket(AF_UNIX): %s", strerror(errno));
  struct timeval tv = { .tv_sec = 5 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect %s: %s", path, strerror(errno));
  char *line = NULL;
  if (asprintf(&line, "%s\n", cmd) < 0) die("out of memory");
  size_t len = strlen(line);
  for (size_t off = 0; off < len;) {
    ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("send to %s: %s", path, strerror(errno));
    off += (size_t)w;
  }
  free(line);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (!buf) die("out of memory");
  for (;;) {
    if (n + 1 >= cap && !(buf = realloc(buf, cap *= 2))) die("out of memory");
    ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("no reply from %s: %s", path, strerror(errno));
    if (r == 0) break;
    n += (size_t)r;
    if (memchr(buf + n - (size_t)r, '\n', (size_t)r)) break;
  }
  close(fd);
  buf[n] = 0;
  char *nl = strchr(buf, '\n');
  if (nl) *nl = 0;
  if (!n) die("connection closed by %s without a reply", path);
  printf("%s\n", buf);
  int ok = strncmp(buf, "ok", 2) == 0 && (buf[2] == 0 || buf[2] == ' ');
  free(buf);
  return ok ? 0 : 1;
}

static int run(void) {
  if (!g.control_path) die("--control is required");
  clock_gettime(CLOCK_MONOTONIC, &g.started);
  signal(SIGPIPE, SIG_IGN);

  // A signalfd in the poll set instead of handlers: a signal between "check the flag" and
  // "block in poll" cannot be lost, so SIGTERM ends the process within one loop turn.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("sigprocmask: %s", strerror(errno));
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd: %s", strerror(errno));

  g.table = maglev_build(g.table_size, g.backends, g.active);
  if (!g.table) die("out of memory");

  struct nfq_handle *h = nfq_open();
  if (!h) die("nfq_open: %s (root, and the nfnetlink_queue module, are needed)", strerror(errno));
  struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)g.queue, on_packet, NULL);
  if (!qh)
    die("cannot bind queue %u: %s%s", g.queue, strerror(errno),
        errno == EPERM ? " (another process holds it: see portid in /proc/net/netfilter/nfnetlink_queue)" : "");
  if (nfq_set_mode(qh, NFQNL_COPY_PACKET, COPY_RANGE) < 0) die("nfq_set_mode: %s", strerror(errno));
  if (nfq_set_queue_maxlen(qh, g.queue_maxlen) < 0) die("nfq_set_queue_maxlen: %s", strerror(errno));
  // No NFQA_CFG_F_FAIL_OPEN on purpose: overload must show as queue drops, not as packets that
  // silently skip the balancer. GSO: we never look past the headers, so skip the segmentation.
  nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);

  int nfd = nfq_fd(h);
  int rcvbuf = 8 << 20;
  if (setsockopt(nfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(nfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  // Belt and braces next to MSG_DONTWAIT: no receive on this socket can block shutdown.
  struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
  setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  int lfd = control_listen(g.control_path);
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  write_stats_file();

  char list[CLIENT_BUF];
  format_active(list, sizeof list, g.active, g.backends);
  printf(PROG " ready queue=%u table_size=%u backends=%u active=%s control=%s\n", g.queue, g.table_size, g.backends,
         list, g.control_path);
  fflush(stdout);

  static char buf[256 * 1024] __attribute__((aligned));
  double last_stats = uptime();
  bool stop = false;
  while (!stop) {
    struct pollfd fds[3 + MAX_CLIENTS];
    int map[3 + MAX_CLIENTS];
    int n = 0;
    fds[n++] = (struct pollfd){ .fd = nfd, .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0) map[n] = i, fds[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
    int r = poll(fds, (nfds_t)n, 1000);
    if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));

    if (r > 0 && fds[0].revents) {
      // Drain a bounded batch: packets come first, but control commands still get a turn.
      for (int i = 0; i < 1024; i++) {
        ssize_t len = recv(nfd, buf, sizeof buf, MSG_DONTWAIT);
        if (len < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          // The kernel could not deliver (our socket buffer was full): those packets were dropped
          // there and show up as user_dropped in /proc/net/netfilter/nfnetlink_queue.
          if (errno == ENOBUFS) {
            g.st.enobufs++;
            continue;
          }
          die("recv from nfnetlink: %s", strerror(errno));
        }
        nfq_handle_packet(h, buf, (int)len);
      }
    }
    if (r > 0 && fds[1].revents) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        fprintf(stderr, PROG ": signal %u, exiting\n", si.ssi_signo);
        stop = true;
      }
    }
    if (r > 0 && fds[2].revents) {
      int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd >= 0) {
        int slot = -1;
        for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
          if (clients[i].fd < 0) slot = i;
        if (slot < 0) {
          const char *busy = "err too many control connections\n";
          if (send(cfd, busy, strlen(busy), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* closing anyway */
          }
          close(cfd);
        } else {
          clients[slot].fd = cfd;
          clients[slot].len = 0;
        }
      }
    }
    for (int i = 3; r > 0 && i < n; i++)
      if (fds[i].revents && clients[map[i]].fd == fds[i].fd) client_read(&clients[map[i]]);

    if (uptime() - last_stats >= 1.0) {
      write_stats_file();
      last_stats = uptime();
    }
  }

  // Unbind before exit: a queue left bound makes the next program fail with EPERM.
  nfq_destroy_queue(qh);
  nfq_close(h);
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0) client_close(&clients[i]);
  close(lfd);
  unlink(g.control_path);
  write_stats_file();
  free(g.table);
  return 0;
}

int main(int argc, char **argv) {
  enum { O_SEND = 1, O_QUEUE, O_TABLE, O_BACKENDS, O_ACTIVE, O_CONTROL, O_STATS, O_MAXLEN, O_DUMP, O_SELFTEST, O_VERSION, O_HELP };
  static const struct option opts[] = {
    { "queue", required_argument, NULL, O_QUEUE },
    { "table-size", required_argument, NULL, O_TABLE },
    { "backends", required_argument, NULL, O_BACKENDS },
    { "active", required_argument, NULL, O_ACTIVE },
    { "control", required_argument, NULL, O_CONTROL },
    { "stats", required_argument, NULL, O_STATS },
    { "queue-maxlen", required_argument, NULL, O_MAXLEN },
    { "dump-table", no_argument, NULL, O_DUMP },
    { "send", required_argument, NULL, O_SEND },
    { "selftest", no_argument, NULL, O_SELFTEST },
    { "version", no_argument, NULL, O_VERSION },
    { "help", no_argument, NULL, O_HELP },
    { 0, 0, 0, 0 },
  };
  bool dump = false, have_table = false, have_backends = false;
  const char *active_arg = NULL, *send_arg = NULL;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case O_QUEUE:
      if (!parse_u32(optarg, &g.queue) || g.queue > 65535) die("--queue: expected 0..65535, got \"%s\"", optarg);
      break;
    case O_TABLE:
      if (!parse_u32(optarg, &g.table_size) || !is_prime(g.table_size) || g.table_size > MAX_TABLE_SIZE)
        die("--table-size: expected a prime ≤ %u, got \"%s\"", MAX_TABLE_SIZE, optarg);
      have_table = true;
      break;
    case O_BACKENDS:
      if (!parse_u32(optarg, &g.backends) || g.backends < 1 || g.backends > MAX_BACKENDS)
        die("--backends: expected 1..%d, got \"%s\"", MAX_BACKENDS, optarg);
      have_backends = true;
      break;
    case O_ACTIVE: active_arg = optarg; break;
    case O_CONTROL: g.control_path = optarg; break;
    case O_STATS: g.stats_path = optarg; break;
    case O_MAXLEN:
      if (!parse_u32(optarg, &g.queue_maxlen) || g.queue_maxlen < 1) die("--queue-maxlen: expected ≥ 1, got \"%s\"", optarg);
      break;
    case O_DUMP: dump = true; break;
    case O_SEND: send_arg = optarg; break;
    case O_SELFTEST: return selftest();
    case O_VERSION:
      printf(PROG " " PROG_VERSION " (libnetfilter_queue " NFQ_LIB_VERSION ", source " SRC_SHA ", gcc " __VERSION__ ")\n");
      return 0;
    case O_HELP: usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (send_arg) {
    if (!g.control_path) die("--send needs --control SOCK");
    return send_command(g.control_path, send_arg);
  }
  if (!have_table || !have_backends) {
    fprintf(stderr, PROG ": --table-size and --backends are required\n");
    usage(stderr);
    return 2;
  }
  if (active_arg) {
    char err[256];
    if (!parse_active(active_arg, g.backends, g.active, err, sizeof err)) die("--active: %s", err);
  } else {
    for (uint32_t i = 0; i < g.backends; i++) g.active[i] = true;
  }
  return dump ? dump_table() : run();
}
