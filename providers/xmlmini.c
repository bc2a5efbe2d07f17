/* xmlmini.c - a minimal, strict XML element reader and text escaper for small API answers. */
#include "xmlmini.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A markup construct other than an element: where it starts, what ends it. */
struct xm_misc {
	const char *open;
	const char *close;
	const char *what;
};

static const struct xm_misc xm_comment = { "<!--", "-->", "comment" };
static const struct xm_misc xm_cdata = { "<![CDATA[", "]]>", "CDATA section" };
static const struct xm_misc xm_pi = { "<?", "?>", "processing instruction" };

static bool
starts(const char *s, size_t len, size_t i, const char *prefix)
{
	size_t n = strlen(prefix);

	return i + n <= len && memcmp(s + i, prefix, n) == 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_name_char(unsigned char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80)
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

/*
 * When s[*i] opens the construct m, moves *i past its end: 1. 0 when it does not open there,
 * -1 (err set) when it is not closed.
 */
static int
skip_misc(const char *s, size_t len, size_t *i, const struct xm_misc *m, cf_err *err)
{
	size_t j, n = strlen(m->close);

	if (!starts(s, len, *i, m->open))
		return 0;
	for (j = *i + strlen(m->open); j + n <= len; j++) {
		if (memcmp(s + j, m->close, n) == 0) {
			*i = j + n;
			return 1;
		}
	}
	cf_errf(err, "xml: %s at offset %zu is not closed", m->what, *i);
	return -1;
}

/* Skips comments and processing instructions at *i: 0, or -1 with err set. */
static int
skip_comments_pis(const char *s, size_t len, size_t *i, cf_err *err)
{
	int r;

	for (;;) {
		if ((r = skip_misc(s, len, i, &xm_comment, err)) < 0)
			return -1;
		if (r > 0)
			continue;
		if ((r = skip_misc(s, len, i, &xm_pi, err)) < 0)
			return -1;
		if (r == 0)
			return 0;
	}
}

/* Reads a name at *i: its start and length, *i after it; -1 with err when there is none. */
static int
read_name(const char *s, size_t len, size_t *i, const char **name, size_t *namelen, cf_err *err)
{
	size_t j = *i;

	if (j >= len || !is_name_char((unsigned char)s[j], true)) {
		cf_errf(err, "xml: expected a tag name at offset %zu", j);
		return -1;
	}
	while (j < len && is_name_char((unsigned char)s[j], false))
		j++;
	*name = s + *i;
	*namelen = j - *i;
	*i = j;
	return 0;
}

/* The local part of a qualified name: after the last ':'. */
static void
local_name(const char **name, size_t *namelen)
{
	for (size_t k = *namelen; k > 0; k--) {
		if ((*name)[k - 1] == ':') {
			*name += k;
			*namelen -= k;
			return;
		}
	}
}

/*
 * Reads the start tag at s[*i] == '<': its qualified name, *i after the '>', *empty when it
 * ends with "/>". Attributes are checked for form and skipped.
 */
static int
read_start_tag(const char *s, size_t len, size_t *i, const char **name, size_t *namelen,
    bool *empty, cf_err *err)
{
	size_t j = *i + 1, at = *i;

	if (read_name(s, len, &j, name, namelen, err) != 0)
		return -1;
	for (;;) {
		const char *an;
		size_t anl;
		char q;

		while (j < len && is_space(s[j]))
			j++;
		if (j >= len)
			break;
		if (s[j] == '>') {
			*empty = false;
			*i = j + 1;
			return 0;
		}
		if (s[j] == '/' && j + 1 < len && s[j + 1] == '>') {
			*empty = true;
			*i = j + 2;
			return 0;
		}
		if (read_name(s, len, &j, &an, &anl, err) != 0)
			return -1;
		while (j < len && is_space(s[j]))
			j++;
		if (j >= len || s[j] != '=') {
			cf_errf(err, "xml: attribute without '=' in the tag at offset %zu", at);
			return -1;
		}
		j++;
		while (j < len && is_space(s[j]))
			j++;
		if (j >= len || (s[j] != '"' && s[j] != '\'')) {
			cf_errf(err, "xml: unquoted attribute value in the tag at offset %zu", at);
			return -1;
		}
		q = s[j++];
		while (j < len && s[j] != q && s[j] != '<')
			j++;
		if (j >= len || s[j] != q) {
			cf_errf(err, "xml: attribute value not closed in the tag at offset %zu", at);
			return -1;
		}
		j++;
	}
	cf_errf(err, "xml: the tag at offset %zu is not closed", at);
	return -1;
}

/*
 * Reads the element whose start tag is at s[*i] (s holds len octets): fills node and moves *i
 * past its end tag, checking that every tag inside is closed in order.
 */
static int
read_element(const char *s, size_t len, size_t *i, struct xmlmini_node *node, cf_err *err)
{
	const char *stack[XMLMINI_MAX_DEPTH];
	size_t stacklen[XMLMINI_MAX_DEPTH];
	size_t depth = 0, j = *i, body;
	const char *name;
	size_t namelen;
	bool empty;
	int r;

	if (read_start_tag(s, len, &j, &name, &namelen, &empty, err) != 0)
		return -1;
	node->name = name;
	node->namelen = namelen;
	local_name(&node->name, &node->namelen);
	node->body = s + j;
	node->bodylen = 0;
	if (empty) {
		*i = j;
		return 0;
	}
	body = j;
	stack[depth] = name;
	stacklen[depth++] = namelen;
	while (j < len) {
		if (s[j] != '<') {
			j++;
			continue;
		}
		if ((r = skip_misc(s, len, &j, &xm_comment, err)) != 0 ||
		    (r = skip_misc(s, len, &j, &xm_cdata, err)) != 0 ||
		    (r = skip_misc(s, len, &j, &xm_pi, err)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		if (starts(s, len, j, "<!")) {
			cf_errf(err, "xml: markup declaration at offset %zu inside an element", j);
			return -1;
		}
		if (starts(s, len, j, "</")) {
			size_t at = j, k;

			j += 2;
			if (read_name(s, len, &j, &name, &namelen, err) != 0)
				return -1;
			while (j < len && is_space(s[j]))
				j++;
			if (j >= len || s[j] != '>') {
				cf_errf(err, "xml: end tag at offset %zu is not closed", at);
				return -1;
			}
			j++;
			k = depth - 1;
			if (namelen != stacklen[k] || memcmp(name, stack[k], namelen) != 0) {
				cf_errf(err, "xml: end tag </%.*s> at offset %zu does not close <%.*s>",
				    (int)(namelen > 64 ? 64 : namelen), name, at,
				    (int)(stacklen[k] > 64 ? 64 : stacklen[k]), stack[k]);
				return -1;
			}
			if (--depth == 0) {
				node->bodylen = at - body;
				*i = j;
				return 0;
			}
			continue;
		}
		if (read_start_tag(s, len, &j, &name, &namelen, &empty, err) != 0)
			return -1;
		if (empty)
			continue;
		if (depth == XMLMINI_MAX_DEPTH) {
			cf_errf(err, "xml: elements nested deeper than %d levels", XMLMINI_MAX_DEPTH);
			return -1;
		}
		stack[depth] = name;
		stacklen[depth++] = namelen;
	}
	cf_errf(err, "xml: element <%.*s> is not closed", (int)(stacklen[0] > 64 ? 64 : stacklen[0]),
	    stack[0]);
	return -1;
}

int
xmlmini_root(const char *doc, size_t len, struct xmlmini_node *root, cf_err *err)
{
	size_t i = 0;

	if (doc == NULL || root == NULL) {
		cf_errf(err, "xmlmini_root: no document or no output");
		return -1;
	}
	memset(root, 0, sizeof(*root));
	if (starts(doc, len, 0, "\xEF\xBB\xBF"))
		i = 3;
	for (;;) {
		while (i < len && is_space(doc[i]))
			i++;
		if (i < len && (starts(doc, len, i, "<!--") || starts(doc, len, i, "<?"))) {
			if (skip_comments_pis(doc, len, &i, err) != 0)
				return -1;
			continue;
		}
		break;
	}
	if (starts(doc, len, i, "<!")) {
		cf_errf(err, "xml: document type declarations are not accepted (offset %zu)", i);
		return -1;
	}
	if (i >= len || doc[i] != '<') {
		cf_errf(err, "xml: no root element (%s at offset %zu)", i >= len ? "end of document" :
		    "text", i);
		return -1;
	}
	if (read_element(doc, len, &i, root, err) != 0)
		return -1;
	for (;;) {
		while (i < len && is_space(doc[i]))
			i++;
		if (i >= len)
			return 0;
		if (!starts(doc, len, i, "<!--") && !starts(doc, len, i, "<?")) {
			cf_errf(err, "xml: content after the root element at offset %zu", i);
			return -1;
		}
		if (skip_comments_pis(doc, len, &i, err) != 0)
			return -1;
	}
}

int
xmlmini_next(const struct xmlmini_node *parent, size_t *pos, struct xmlmini_node *child, cf_err *err)
{
	const char *s = parent->body;
	size_t len = parent->bodylen, i = *pos;
	int r;

	while (i < len) {
		if (s[i] != '<') {
			i++;
			continue;
		}
		if ((r = skip_misc(s, len, &i, &xm_comment, err)) != 0 ||
		    (r = skip_misc(s, len, &i, &xm_cdata, err)) != 0 ||
		    (r = skip_misc(s, len, &i, &xm_pi, err)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		if (starts(s, len, i, "</") || starts(s, len, i, "<!")) {
			cf_errf(err, "xml: unexpected markup inside <%.*s>",
			    (int)(parent->namelen > 64 ? 64 : parent->namelen), parent->name);
			return -1;
		}
		if (read_element(s, len, &i, child, err) != 0)
			return -1;
		*pos = i;
		return 1;
	}
	*pos = len;
	return 0;
}

int
xmlmini_is(const struct xmlmini_node *node, const char *name)
{
	size_t n = strlen(name);

	return node->namelen == n && memcmp(node->name, name, n) == 0;
}

int
xmlmini_child(const struct xmlmini_node *parent, const char *name, struct xmlmini_node *child,
    cf_err *err)
{
	size_t pos = 0;
	int r;

	while ((r = xmlmini_next(parent, &pos, child, err)) == 1)
		if (xmlmini_is(child, name))
			return 1;
	return r;
}

/* Appends code point cp as UTF-8. */
static int
put_utf8(cf_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return cf_buf_append(b, u, n);
}

/* Decodes the reference at s[*i] == '&' into b, *i after its ';'. */
static int
decode_entity(cf_buf *b, const char *s, size_t len, size_t *i, cf_err *err)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "quot", '"' }, { "apos", '\'' } };
	const char *semi = memchr(s + *i, ';', len - *i > 12 ? 12 : len - *i);
	const char *ref = s + *i + 1;
	size_t n;

	if (semi == NULL) {
		cf_errf(err, "xml: '&' without a reference at offset %zu of the text", *i);
		return -1;
	}
	n = (size_t)(semi - ref);
	if (n >= 2 && ref[0] == '#') {
		bool hex = ref[1] == 'x';
		uint32_t cp = 0;
		size_t k = hex ? 2 : 1;

		if (k >= n)
			goto bad;
		for (; k < n; k++) {
			char c = ref[k];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				goto bad;
			cp = cp * (hex ? 16 : 10) + (uint32_t)d;
			if (cp > 0x10FFFF)
				goto bad;
		}
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
			goto bad;
		if (put_utf8(b, cp) != 0)
			goto oom;
		*i += n + 2;
		return 0;
	}
	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
		if (strlen(named[k].name) == n && memcmp(ref, named[k].name, n) == 0) {
			if (cf_buf_append(b, &named[k].c, 1) != 0)
				goto oom;
			*i += n + 2;
			return 0;
		}
	}
bad:
	cf_errf(err, "xml: unknown or invalid reference &%.*s; in the text", (int)n, ref);
	return -1;
oom:
	cf_errf(err, "xml: out of memory for the text");
	return -1;
}

char *
xmlmini_text(const struct xmlmini_node *node, size_t *len, cf_err *err)
{
	const char *s = node->body;
	size_t n = node->bodylen, i = 0;
	cf_buf b = { 0 };
	int r;

	if (len != NULL)
		*len = 0;
	if (cf_buf_append(&b, "", 0) != 0)
		goto oom;
	while (i < n) {
		size_t run = i;

		while (run < n && s[run] != '<' && s[run] != '&')
			run++;
		if (cf_buf_append(&b, s + i, run - i) != 0)
			goto oom;
		i = run;
		if (i >= n)
			break;
		if (s[i] == '&') {
			if (decode_entity(&b, s, n, &i, err) != 0)
				goto fail;
			continue;
		}
		if (starts(s, n, i, xm_cdata.open)) {
			size_t start = i + strlen(xm_cdata.open);

			if ((r = skip_misc(s, n, &i, &xm_cdata, err)) < 0)
				goto fail;
			if (cf_buf_append(&b, s + start, i - strlen(xm_cdata.close) - start) != 0)
				goto oom;
			continue;
		}
		if ((r = skip_misc(s, n, &i, &xm_comment, err)) != 0 ||
		    (r = skip_misc(s, n, &i, &xm_pi, err)) != 0) {
			if (r < 0)
				goto fail;
			continue;
		}
		cf_errf(err, "xml: <%.*s> holds an element where text was expected",
		    (int)(node->namelen > 64 ? 64 : node->namelen), node->name);
		goto fail;
	}
	if (len != NULL)
		*len = b.len;
	return b.data;
oom:
	cf_errf(err, "xml: out of memory for the text");
fail:
	cf_buf_free(&b);
	return NULL;
}

char *
xmlmini_child_text(const struct xmlmini_node *parent, const char *name, cf_err *err)
{
	struct xmlmini_node child;
	int r;

	if (err != NULL)
		err->msg[0] = '\0';
	if ((r = xmlmini_child(parent, name, &child, err)) != 1)
		return NULL;
	return xmlmini_text(&child, NULL, err);
}

int
xmlmini_escape(cf_buf *b, const char *s, size_t n)
{
	size_t i = 0, run = 0;

	for (; i < n; i++) {
		const char *ent;

		switch (s[i]) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&apos;";
			break;
		default:
			continue;
		}
		if (cf_buf_append(b, s + run, i - run) != 0 || cf_buf_append(b, ent, strlen(ent)) != 0)
			return -1;
		run = i + 1;
	}
	return cf_buf_append(b, s + run, n - run);
}
