/* security.c -- CurveZMQ key files and the ZAP handler (see security.h). */
#define _GNU_SOURCE
#include "security.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "atomicfile.h"
#include "leadscore/error.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct {
    uint8_t key[32];
    int admin;
} allowed_key;

struct security {
    void *zmq;
    void *zap;                 /* the handler's REP socket */
    pthread_t thread;
    int running;
    char secret[SECURITY_KEY_Z85], public_key[SECURITY_KEY_Z85];
    allowed_key *keys;
    size_t nkeys;
};

/* ------------------------------------------------------------------ */
/* Key files                                                           */
/* ------------------------------------------------------------------ */

/* Next key of an open key file: 1 found, 0 end, LS_EPARSE bad line.
 * Z85 has '#' in its alphabet, so a line's first word is a key when it is
 * 40 valid Z85 characters; otherwise a first word starting with '#' makes
 * the line a comment.  After a key only a '#' comment may follow. */
static int next_key(FILE *fp, char z85[SECURITY_KEY_Z85], int *lineno)
{
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        (*lineno)++;
        char *s = line + strspn(line, " \t");
        size_t n = strcspn(s, " \t\r\n");
        uint8_t bin[32];
        if (n == 40) {
            memcpy(z85, s, 40);
            z85[40] = '\0';
            char *rest = s + n + strspn(s + n, " \t\r\n");
            if (zmq_z85_decode(bin, z85) && (*rest == '\0' || *rest == '#'))
                return 1;
        }
        if (n == 0 || s[0] == '#')
            continue;
        return LS_EPARSE;
    }
    return 0;
}

int security_read_key(const char *path, char z85[SECURITY_KEY_Z85], char *err, size_t errlen)
{
    int lineno = 0;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return LS_EIO;
    }
    int rc = next_key(fp, z85, &lineno);
    fclose(fp);
    if (rc == 1)
        return LS_OK;
    snprintf(err, errlen, "%s:%d: expected a 40-character Z85 key", path, lineno);
    return LS_EPARSE;
}

/* Writes one key file of a pair (not yet in place: see security_keygen). */
static int write_key(atomicfile *af, const char *path, unsigned mode, const char *text, char *err, size_t errlen)
{
    int rc = atomicfile_open_mode(af, path, mode, err, errlen);
    if (rc == LS_OK && fputs(text, af->f) == EOF) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        atomicfile_abort(af);
        rc = LS_EIO;
    }
    return rc;
}

/* Both files are written beside their names first and put in place only
 * when both are whole, so a failure (a full disk, a name that is a
 * directory) leaves an existing pair as it was; a name that is a symbolic
 * link is replaced, not written through. */
int security_keygen(const char *prefix, char *err, size_t errlen)
{
    char pub[SECURITY_KEY_Z85], sec[SECURITY_KEY_Z85], key_path[1100], pub_path[1100], text[256];
    atomicfile key_file, pub_file;
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "this libzmq cannot make CURVE keys (built without libsodium?)");
        return LS_EINTERNAL;
    }
    snprintf(key_path, sizeof key_path, "%s.key", prefix);
    snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
    snprintf(text, sizeof text, "%s\n%s\n", SECURITY_SECRET_HEADER, sec);
    int rc = write_key(&key_file, key_path, 0600, text, err, errlen);
    if (rc)
        return rc;
    snprintf(text, sizeof text, "%s\n%s\n", SECURITY_PUBLIC_HEADER, pub);
    if ((rc = write_key(&pub_file, pub_path, 0644, text, err, errlen)) != LS_OK) {
        atomicfile_abort(&key_file);
        return rc;
    }
    if ((rc = atomicfile_commit(&key_file, err, errlen)) != LS_OK) {
        atomicfile_abort(&pub_file);
        return rc;
    }
    return atomicfile_commit(&pub_file, err, errlen);
}

/* Appends every key of a list file with the given role. */
static int load_list(security *s, const char *path, int admin, char *err, size_t errlen)
{
    char z85[SECURITY_KEY_Z85];
    int lineno = 0, rc;
    if (!path || !*path)
        return LS_OK;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot read key list %s: %s", path, strerror(errno));
        return LS_EIO;
    }
    while ((rc = next_key(fp, z85, &lineno)) == 1) {
        allowed_key *k = realloc(s->keys, (s->nkeys + 1) * sizeof *k);
        if (!k) {
            rc = LS_ENOMEM;
            break;
        }
        s->keys = k;
        zmq_z85_decode(k[s->nkeys].key, z85);
        k[s->nkeys++].admin = admin;
    }
    fclose(fp);
    if (rc == LS_EPARSE)
        snprintf(err, errlen, "%s:%d: expected a 40-character Z85 public key", path, lineno);
    return rc == 0 ? LS_OK : rc;
}

/* ------------------------------------------------------------------ */
/* The ZAP handler (RFC 27)                                            */
/* ------------------------------------------------------------------ */

/* The role of a client key: "admin", "client", or NULL (refused). */
static const char *role_of(const security *s, const uint8_t key[32])
{
    const char *role = NULL;
    for (size_t i = 0; i < s->nkeys; i++)
        if (memcmp(s->keys[i].key, key, 32) == 0)
            role = s->keys[i].admin ? SECURITY_ROLE_ADMIN : (role ? role : SECURITY_ROLE_CLIENT);
    return role;
}

static void zap_reply(void *sock, zmq_msg_t *request_id, const char *status, const char *text, const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(request_id), zmq_msg_size(request_id), ZMQ_SNDMORE);
    zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

/* One ZAP request: version, request id, domain, address, routing id,
 * mechanism, credentials. */
static int zap_once(security *s)
{
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more && n < 8) {
        zmq_msg_init(&part[n]);
        if (zmq_msg_recv(&part[n], s->zap, 0) < 0) {
            zmq_msg_close(&part[n]);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&part[i]);
            return -1;
        }
        more = zmq_msg_more(&part[n++]);
    }
    const char *role = NULL;
    if (n == 7 && zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&part[6]) == 32)
        role = role_of(s, zmq_msg_data(&part[6]));
    if (n >= 2)
        zap_reply(s->zap, &part[1], role ? "200" : "400", role ? "OK" : "key not allowed", role ? role : "");
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
    return 0;
}

static void *zap_main(void *arg)
{
    prctl(PR_SET_NAME, "ls-zap");
    security *s = arg;
    while (zap_once(s) == 0)
        ;
    zmq_close(s->zap); /* ETERM: the context is closing */
    s->zap = NULL;
    return NULL;
}

/* Whether the file at path begins with keygen's public-key comment (a
 * PREFIX.pub given where the secret belongs: its key would be taken as a
 * secret, and the server would answer no client). */
static int is_public_key_file(const char *path)
{
    char line[128];
    FILE *fp = fopen(path, "r");
    int pub = fp && fgets(line, sizeof line, fp) &&
              strncmp(line, SECURITY_PUBLIC_HEADER, strlen(SECURITY_PUBLIC_HEADER)) == 0 &&
              (line[strlen(SECURITY_PUBLIC_HEADER)] == '\n' || line[strlen(SECURITY_PUBLIC_HEADER)] == '\0');
    if (fp)
        fclose(fp);
    return pub;
}

int security_start(security **out, void *zmq, const char *secret_path, const char *allow_path,
                   const char *admin_path, char *err, size_t errlen)
{
    int zero = 0;
    security *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return LS_ENOMEM;
    s->zmq = zmq;
    int rc = security_read_key(secret_path, s->secret, err, errlen);
    if (rc == LS_OK && is_public_key_file(secret_path)) {
        snprintf(err, errlen, "%s is a public key file (it begins \"%s\"): --curve-secret takes the secret, "
                 "PREFIX.key of `leadscore keygen`", secret_path, SECURITY_PUBLIC_HEADER);
        rc = LS_EINVAL;
    }
    if (rc == LS_OK && zmq_curve_public(s->public_key, s->secret) != 0) {
        snprintf(err, errlen, "%s does not hold a valid CURVE secret key", secret_path);
        rc = LS_EPARSE;
    }
    if (rc == LS_OK && (rc = load_list(s, allow_path, 0, err, errlen)) == LS_OK)
        rc = load_list(s, admin_path, 1, err, errlen);
    if (rc == LS_OK && s->nkeys == 0) {
        snprintf(err, errlen, "CURVE is on but neither --allow nor --admin lists a client key: nobody could connect");
        rc = LS_EINVAL;
    }
    if (rc == LS_OK) {
        s->zap = zmq_socket(zmq, ZMQ_REP);
        if (!s->zap || zmq_setsockopt(s->zap, ZMQ_LINGER, &zero, sizeof zero) || zmq_bind(s->zap, ZAP_ENDPOINT) ||
            pthread_create(&s->thread, NULL, zap_main, s) != 0) {
            snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
            rc = LS_EINTERNAL;
        } else {
            s->running = 1;
        }
    }
    if (rc) {
        if (s->zap)
            zmq_close(s->zap);
        free(s->keys);
        free(s);
        return rc;
    }
    *out = s;
    return LS_OK;
}

int security_apply(const security *s, void *socket)
{
    int one = 1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, s->secret, 40) ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, "leadscore", 9))
        return LS_EINTERNAL;
    return LS_OK;
}

const char *security_public_key(const security *s)
{
    return s->public_key;
}

void security_stop(security **sp)
{
    if (!sp || !*sp)
        return;
    security *s = *sp;
    if (s->running)
        pthread_join(s->thread, NULL);
    free(s->keys);
    memset(s->secret, 0, sizeof s->secret);
    free(s);
    *sp = NULL;
}
