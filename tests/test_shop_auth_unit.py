"""WooCommerce's REST authentication in the lab shop, checked against the official client.

The signatures come from the `woocommerce` package's own OAuth class (the official Python
client), not from our signer, so a base-string mistake on either side shows up here.
"""
import base64
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
from woocommerce.oauth import OAuth

from groundfloor import oauth1
from chaosext.shop.rest import RestClient
from woolab.shop.auth import ApiKey, Authenticator, is_ssl
from woolab.shop.errors import ShopError

KEY, SECRET = "ck_unit", "cs_unit"
HOST = "127.0.0.1:8080"


class FakeKeys:
    """The key table: one read_write key; nonce writes recorded."""

    def __init__(self):
        self.row = ApiKey(1, "read_write", SECRET)
        self.saved = 0

    def find(self, consumer_key):
        return self.row if consumer_key == KEY else None

    def save_nonces(self, key):
        self.saved += 1


def environ(url, headers=None, method="GET"):
    parts = urlsplit(url)
    env = {"REQUEST_METHOD": method, "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
           "HTTP_HOST": parts.netloc, "wsgi.url_scheme": "http"}
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def official_url(path="wp-json/wc/v3/orders", query="per_page=5&include=1%2C2", **kw):
    url = f"http://{HOST}/{path}" + (f"?{query}" if query else "")
    return OAuth(url, KEY, SECRET, version="wc/v3", method="GET", **kw).get_oauth_url()


def refusal(auth, env):
    with pytest.raises(ShopError) as info:
        auth.check(env)
    assert info.value.status == 401
    return info.value


def test_official_client_signature_is_accepted_and_its_nonce_stored():
    keys = FakeKeys()
    Authenticator(keys).check(environ(official_url()))
    assert keys.saved == 1 and len(keys.row.nonces) == 1


def test_hmac_sha1_is_accepted_like_woocommerce():
    url = f"http://{HOST}/wp-json/wc/v3/orders"
    params = oauth1.signed_params("GET", url, KEY, SECRET, {"page": "2"}, method="HMAC-SHA1")
    query = "&".join(f"{k}={oauth1.rawurlencode(v)}" for k, v in params.items())
    Authenticator(FakeKeys()).check(environ(f"{url}?{query}"))


def test_a_wrong_signature_is_refused():
    url = official_url().replace("per_page=5", "per_page=6")  # signed for 5, sent with 6
    err = refusal(Authenticator(FakeKeys()), environ(url))
    assert err.message == "Invalid signature - provided signature does not match."


def test_a_replayed_nonce_is_refused():
    auth, url = Authenticator(FakeKeys()), official_url()
    auth.check(environ(url))
    err = refusal(auth, environ(url))
    assert err.message == "Invalid nonce - nonce has already been used."


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60])
def test_a_timestamp_outside_fifteen_minutes_is_refused(skew):
    url = official_url(oauth_timestamp=int(time.time()) + skew)
    assert refusal(Authenticator(FakeKeys()), environ(url)).message == "Invalid timestamp."


def test_an_unknown_signature_method_is_refused():
    url = f"http://{HOST}/wp-json/wc/v3/orders"
    params = oauth1.signed_params("GET", url, KEY, SECRET)
    params["oauth_signature_method"] = "PLAINTEXT"
    query = "&".join(f"{k}={oauth1.rawurlencode(v)}" for k, v in params.items())
    err = refusal(Authenticator(FakeKeys()), environ(f"{url}?{query}"))
    assert err.message == "Invalid signature - signature method is invalid."


def test_some_but_not_all_oauth_parameters_is_a_missing_parameter_error():
    err = refusal(Authenticator(FakeKeys()), environ(f"http://{HOST}/x?oauth_consumer_key={KEY}"))
    assert err.code == "woocommerce_rest_authentication_missing_parameter"
    assert "oauth_nonce" in err.message


def test_an_unknown_consumer_key_is_refused():
    url = official_url().replace(f"oauth_consumer_key={KEY}", "oauth_consumer_key=ck_other")
    assert refusal(Authenticator(FakeKeys()), environ(url)).message == "Consumer key is invalid."


def test_oauth_parameters_in_the_authorization_header_are_read():
    url = f"http://{HOST}/wp-json/wc/v3/orders"
    params = oauth1.signed_params("GET", url, KEY, SECRET)
    header = "OAuth " + ", ".join(f'{k}="{oauth1.rawurlencode(v)}"' for k, v in params.items())
    Authenticator(FakeKeys()).check(environ(url, {"Authorization": header}))


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_and_query_credentials_count_only_over_https():
    auth = Authenticator(FakeKeys())
    url = f"http://{HOST}/wp-json/wc/v3/orders"
    plain = refusal(auth, environ(url, {"Authorization": basic(KEY, SECRET)}))
    assert plain.code == "woocommerce_rest_cannot_view"
    refusal(auth, environ(f"{url}?consumer_key={KEY}&consumer_secret={SECRET}"))
    secure = environ(url, {"Authorization": basic(KEY, SECRET)})
    secure["wsgi.url_scheme"] = "https"  # gunicorn's reading of X-Forwarded-Proto: https
    auth.check(secure)
    query = environ(f"{url}?consumer_key={KEY}&consumer_secret={SECRET}")
    query["HTTPS"] = "on"
    auth.check(query)


def test_a_wrong_basic_secret_over_https_names_the_secret_and_asks_for_basic():
    env = environ(f"https://{HOST}/wp-json/wc/v3/orders", {"Authorization": basic(KEY, "nope")})
    env["wsgi.url_scheme"] = "https"
    err = refusal(Authenticator(FakeKeys()), env)
    assert err.message == "Consumer secret is invalid."
    assert err.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_is_ssl_follows_wordpress():
    assert is_ssl({"HTTPS": "on"}) and is_ssl({"HTTPS": "1"}) and is_ssl({"SERVER_PORT": "443"})
    assert is_ssl({"wsgi.url_scheme": "https"}) and not is_ssl({"wsgi.url_scheme": "http"})


@pytest.mark.parametrize("base,scheme", [("http://shop.test", "oauth1"), ("https://shop.test", "basic")])
def test_rpo_client_uses_what_the_store_accepts_on_each_scheme(base, scheme):
    client = RestClient(base, KEY, SECRET)
    req = client.request_for("GET", "/orders?include=1,2")
    assert client.scheme_auth == scheme
    query = dict(parse_qsl(urlsplit(req.full_url).query))
    if scheme == "basic":
        assert req.get_header("Authorization") == basic(KEY, SECRET) and "oauth_signature" not in query
    else:
        assert req.get_header("Authorization") is None and query["oauth_signature_method"] == "HMAC-SHA256"
        assert query["include"] == "1,2"
        env = environ(req.full_url)
        Authenticator(FakeKeys()).check(env)
