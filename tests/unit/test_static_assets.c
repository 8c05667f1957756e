/*
 * Unit tests for agent/static_assets: the dashboard page's Content-Security-Policy (the
 * hashes of its inline scripts, computed at load) and which files get it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "static_assets.h"

/* base64(SHA-256("alert(1)")), as a browser computes it for <script>alert(1)</script>. */
#define ALERT_HASH "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"

static int csp_of(const char *html, char *buf, size_t cap)
{
    return static_assets_page_csp(html, strlen(html), buf, cap);
}

Test(static_assets, page_csp_lists_the_hash_of_each_inline_script)
{
    char csp[STATIC_CSP_MAX];
    const char *html = "<html><SCRIPT type=\"module\">alert(1)</script>"
                       "<script>\n  let x = 1;\n</Script></html>";
    cr_assert_gt(csp_of(html, csp, sizeof csp), 0);
    cr_assert_not_null(strstr(csp, "script-src 'self' " ALERT_HASH
                                   " 'sha256-A2jmBYlPp/F4lo/1Kz8Dq7g9bhRinYgnzxYyprQnoCQ=';"),
                       "%s", csp);
}

Test(static_assets, page_csp_locks_down_plugins_base_and_framing)
{
    char csp[STATIC_CSP_MAX];
    cr_assert_gt(csp_of("<p>no scripts</p>", csp, sizeof csp), 0);
    cr_assert_not_null(strstr(csp, "script-src 'self';"), "%s", csp);
    cr_assert_not_null(strstr(csp, "object-src 'none'"));
    cr_assert_not_null(strstr(csp, "base-uri 'none'"));
    cr_assert_not_null(strstr(csp, "frame-ancestors 'self'"));
    cr_assert_not_null(strstr(csp, "default-src 'self'"));
    cr_assert_null(strstr(csp, "unsafe-eval"));
    cr_assert_null(strpbrk(csp, "\r\n"));
}

Test(static_assets, page_csp_skips_scripts_loaded_by_src)
{
    char csp[STATIC_CSP_MAX];
    const char *html = "<script type=\"module\" src=\"/widget/exectime-widget.js\"></script>"
                       "<script\tSRC='/x.js'>ignored()</script><scripts>alert(1)</scripts>"
                       "<script data-src=\"y\">alert(1)</script>";
    cr_assert_gt(csp_of(html, csp, sizeof csp), 0);
    /* Only the last element is inline: data-src is not src, <scripts> not a script. */
    cr_assert_not_null(strstr(csp, "script-src 'self' " ALERT_HASH ";"), "%s", csp);
}

Test(static_assets, page_csp_allows_no_inline_script_when_it_cannot_list_them_all)
{
    char csp[STATIC_CSP_MAX];
    char html[1024] = "";
    for (int i = 0; i <= STATIC_INLINE_SCRIPTS_MAX; i++)
        snprintf(html + strlen(html), sizeof html - strlen(html), "<script>f(%d)</script>", i);
    cr_assert_eq(csp_of(html, csp, sizeof csp), -E2BIG);
    cr_assert_null(strstr(csp, "sha256-"), "%s", csp);
    cr_assert_not_null(strstr(csp, "script-src 'self';"));

    cr_assert_eq(csp_of("<script>alert(1)", csp, sizeof csp), -EINVAL);
    cr_assert_null(strstr(csp, "sha256-"), "%s", csp);
    cr_assert_eq(csp_of("<script>alert(1)</script>", csp, 64), -E2BIG);
}

Test(static_assets, load_gives_only_the_page_a_policy)
{
    char dir[] = "/tmp/test_static_assets.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    const char *files[][2] = {{"dashboard.html", "<script>alert(1)</script>"},
                              {"exectime-widget.js", "export {};"}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    static_assets_t sa;
    cr_assert_eq(static_assets_load(&sa, dir), 2);
    for (int i = 0; i < STATIC_ASSET_COUNT; i++) {
        const static_asset_t *a = &sa.assets[i];
        if (a->is_page)
            cr_assert_not_null(strstr(a->csp, ALERT_HASH), "%s", a->csp);
        else
            cr_assert_str_empty(a->csp);
    }
    static_assets_free(&sa);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        unlink(path);
    }
    rmdir(dir);
}

Test(static_assets, only_the_widget_bundle_is_shared_with_other_origins)
{
    static_assets_t sa;
    cr_assert_eq(static_assets_load(&sa, ""), 0);
    for (int i = 0; i < STATIC_ASSET_COUNT; i++) {
        const static_asset_t *a = &sa.assets[i];
        cr_assert_eq(a->cross_origin, strcmp(a->path, "/widget/exectime-widget.js") == 0, "%s",
                     a->path);
    }
    static_assets_free(&sa);
}
