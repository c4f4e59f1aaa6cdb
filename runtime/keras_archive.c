// keras_archive.c — Keras 3's .keras files: a zip of metadata.json, config.json and
// model.weights.h5 (the .weights.h5 layout of h5.c), as model.save('x.keras') writes them
// and keras.models.load_model reads them.
//
// Written with stored (uncompressed) entries, as Keras writes them, through rt_atomic.
// Read: the central directory is found from the end record and every offset and size is
// checked against the file before use; stored and deflated entries are accepted, the
// CRC-32 is checked; zip64 archives are refused (a model of more than 4 GB).
#include "rt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }
static unsigned get16(const uint8_t *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

typedef struct entry { const char *name; const void *data; size_t size; uint32_t crc, offset; } entry;

// What local and central headers both say of an entry, in the same order: version needed
// (2.0), flags (UTF-8 names), method (stored), time, date, CRC-32, sizes, name length.
static void put_entry_fields(uint8_t *p, const entry *e, unsigned dos_time, unsigned dos_date) {
  put16(p, 20);
  put16(p + 2, 0x0800);
  put16(p + 4, 0);
  put16(p + 6, dos_time);
  put16(p + 8, dos_date);
  put32(p + 10, e->crc);
  put32(p + 14, (uint32_t)e->size);
  put32(p + 18, (uint32_t)e->size);
  put16(p + 22, (unsigned)strlen(e->name));
}

static int write_archive(const char *path, entry *e, int n) {
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  unsigned dos_time = (unsigned)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
  unsigned dos_date = (unsigned)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
  rt_atomic a;
  if (rt_atomic_open(&a, path) != 0) return -1;
  uint32_t at = 0;
  uint8_t h[46];
  for (int i = 0; i < n; i++) {
    size_t name_len = strlen(e[i].name);
    e[i].crc = (uint32_t)crc32(0, e[i].data, (uInt)e[i].size);
    e[i].offset = at;
    memset(h, 0, 30);
    put32(h, 0x04034b50);
    put_entry_fields(h + 4, &e[i], dos_time, dos_date);
    fwrite(h, 1, 30, a.f);
    fwrite(e[i].name, 1, name_len, a.f);
    fwrite(e[i].data, 1, e[i].size, a.f);
    at += (uint32_t)(30 + name_len + e[i].size);
  }
  uint32_t dir_at = at;
  for (int i = 0; i < n; i++) {
    size_t name_len = strlen(e[i].name);
    memset(h, 0, 46);
    put32(h, 0x02014b50);
    put16(h + 4, 0x0314);          // made by: Unix, 2.0
    put_entry_fields(h + 6, &e[i], dos_time, dos_date);
    put32(h + 38, 0100644u << 16);  // a regular file, rw-r--r--
    put32(h + 42, e[i].offset);
    fwrite(h, 1, 46, a.f);
    fwrite(e[i].name, 1, name_len, a.f);
    at += (uint32_t)(46 + name_len);
  }
  memset(h, 0, 22);
  put32(h, 0x06054b50);
  put16(h + 8, (unsigned)n);
  put16(h + 10, (unsigned)n);
  put32(h + 12, at - dir_at);
  put32(h + 16, dir_at);
  fwrite(h, 1, 22, a.f);
  return rt_atomic_commit(&a);
}

int nn_save_keras(const nn_model *m, const char *path) {
  if (!m->keras_config)
    return rt_error("%s: this program was built without the model's Keras config (nnc's bug)", path);
  size_t h5_size;
  void *h5 = rt_h5_weights_image(m, &h5_size, path);
  if (!h5) return -1;
  if (h5_size > 0xffff0000u) {
    free(h5);
    return rt_error("%s: the weights take more than 4 GB, which needs zip64 (not supported)", path);
  }
  char meta[160], date[32];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", &tm);
  snprintf(meta, sizeof meta, "{\"keras_version\": \"3.0.0\", \"date_saved\": \"%s\", \"producer\": \"nnc\"}", date);
  entry e[3] = {{.name = "metadata.json", .data = meta, .size = strlen(meta)},
                {.name = "config.json", .data = m->keras_config, .size = strlen(m->keras_config)},
                {.name = "model.weights.h5", .data = h5, .size = h5_size}};
  int rc = write_archive(path, e, 3);
  free(h5);
  return rc;
}

// The bytes of entry `want` of the archive z[0..size), malloc'ed; NULL with a message.
static void *find_entry(const uint8_t *z, size_t size, const char *want, size_t *out_size, const char *path) {
  // The end record: 22 bytes plus a comment of up to 65535 bytes, at the end.
  size_t end = (size_t)-1;
  for (size_t i = size >= 22 ? size - 22 : 0; size >= 22; i--) {
    if (get32(z + i) == 0x06054b50 && i + 22 + get16(z + i + 20) == size) {
      end = i;
      break;
    }
    if (i == 0 || size - i > 22 + 65535) break;
  }
  if (end == (size_t)-1) {
    rt_error("%s: not a .keras archive (not a zip file)", path);
    return NULL;
  }
  unsigned count = get16(z + end + 10);
  uint32_t dir_size = get32(z + end + 12), dir_at = get32(z + end + 16);
  if (count == 0xffff || dir_at == 0xffffffffu || (uint64_t)dir_at + dir_size > end) {
    rt_error("%s: the zip's central directory is outside the file (or zip64, not supported)", path);
    return NULL;
  }
  size_t at = dir_at;
  for (unsigned i = 0; i < count; i++) {
    if (at + 46 > end || get32(z + at) != 0x02014b50) {
      rt_error("%s: damaged zip central directory (entry %u)", path, i);
      return NULL;
    }
    unsigned method = get16(z + at + 10), name_len = get16(z + at + 28);
    size_t next = at + 46 + name_len + get16(z + at + 30) + get16(z + at + 32);
    uint32_t crc = get32(z + at + 16), csize = get32(z + at + 20), usize = get32(z + at + 24), local = get32(z + at + 42);
    if (next > end) {
      rt_error("%s: damaged zip central directory (entry %u)", path, i);
      return NULL;
    }
    if (name_len != strlen(want) || memcmp(z + at + 46, want, name_len) != 0) {
      at = next;
      continue;
    }
    if (csize == 0xffffffffu || usize == 0xffffffffu || local == 0xffffffffu) {
      rt_error("%s: %s is stored as zip64 (not supported)", path, want);
      return NULL;
    }
    if ((uint64_t)local + 30 > size || get32(z + local) != 0x04034b50) {
      rt_error("%s: %s: its local header is outside the file or damaged", path, want);
      return NULL;
    }
    uint64_t data_at = (uint64_t)local + 30 + get16(z + local + 26) + get16(z + local + 28);
    if (data_at + csize > size) {
      rt_error("%s: %s runs past the end of the file (truncated?)", path, want);
      return NULL;
    }
    if (method != 0 && method != 8) {
      rt_error("%s: %s is compressed with method %u (stored and deflate are supported)", path, want, method);
      return NULL;
    }
    // Deflate expands at most 1032 times: a larger claim is a damaged (or hostile) entry,
    // refused before its size is allocated.
    if (method == 8 && (uint64_t)usize > (uint64_t)csize * 1032 + 64) {
      rt_error("%s: %s claims %u bytes from %u compressed ones (damaged)", path, want, usize, csize);
      return NULL;
    }
    if (method == 0 && csize != usize) {
      rt_error("%s: %s: stored entry with different sizes", path, want);
      return NULL;
    }
    uint8_t *out = malloc((size_t)usize + 1);
    if (!out) {
      rt_error("out of memory");
      return NULL;
    }
    bool ok = true;
    if (method == 0) {
      memcpy(out, z + data_at, usize);
    } else {
      z_stream s = {0};
      ok = inflateInit2(&s, -15) == Z_OK;
      if (ok) {
        s.next_in = (Bytef *)(z + data_at);
        s.avail_in = csize;
        s.next_out = out;
        s.avail_out = usize;
        ok = inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == usize;
        inflateEnd(&s);
      }
    }
    if (ok && (uint32_t)crc32(0, out, usize) != crc) ok = false;
    if (!ok) {
      free(out);
      rt_error("%s: %s is damaged (it does not inflate to its size or its CRC-32 differs)", path, want);
      return NULL;
    }
    *out_size = usize;
    return out;
  }
  rt_error("%s: the archive has no %s (not a Keras 3 .keras file?)", path, want);
  return NULL;
}

int nn_load_keras(nn_model *m, const char *path) {
  size_t size, h5_size;
  char *z = rt_read_file(path, &size);
  if (!z) return -1;
  void *h5 = find_entry((const uint8_t *)z, size, "model.weights.h5", &h5_size, path);
  free(z);
  if (!h5) return -1;
  char where[4200];
  snprintf(where, sizeof where, "%s: model.weights.h5", path);
  int rc = rt_h5_load_image(m, h5, h5_size, where);
  free(h5);
  return rc;
}
