"""PyJWT against Writ's JWT-SVIDs.

  check_jwt.py verify TOKEN JWKS_FILE AUDIENCE EXPECTED_SUB   exit 0 if PyJWT accepts the token
  check_jwt.py refuse-audience TOKEN JWKS_FILE AUDIENCE       exit 0 if PyJWT refuses it for `aud`
  check_jwt.py sign KEY_PEM KID ALG SUB AUD                   print a token signed by PyJWT

JWKS_FILE may be a plain JWKS or a SPIFFE bundle (only `jwt-svid` keys are used from a bundle).
"""
import json
import sys
import time

import jwt
from jwt import PyJWK


def key_for(token, jwks_path):
    with open(jwks_path) as handle:
        document = json.load(handle)
    kid = jwt.get_unverified_header(token)["kid"]
    for entry in document["keys"]:
        if entry.get("use", "jwt-svid") != "jwt-svid":
            continue
        if entry.get("kid") == kid:
            return PyJWK(entry).key
    raise SystemExit(f"no jwt-svid key with kid {kid!r} in {jwks_path}")


def main():
    command = sys.argv[1]
    if command == "verify":
        token, jwks_path, audience, subject = sys.argv[2:6]
        header = jwt.get_unverified_header(token)
        if set(header) != {"alg", "kid", "typ"} or header["typ"] != "JWT":
            raise SystemExit(f"unexpected header {header}")
        claims = jwt.decode(token, key_for(token, jwks_path), algorithms=[header["alg"]], audience=audience,
                            options={"require": ["exp", "sub", "aud"]})
        if claims["sub"] != subject:
            raise SystemExit(f"sub {claims['sub']!r} != {subject!r}")
        if not isinstance(claims["aud"], list) or not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
            raise SystemExit(f"claims have the wrong JSON types: {claims}")
        return 0
    if command == "refuse-audience":
        token, jwks_path, audience = sys.argv[2:5]
        header = jwt.get_unverified_header(token)
        try:
            jwt.decode(token, key_for(token, jwks_path), algorithms=[header["alg"]], audience=audience)
        except jwt.InvalidAudienceError:
            return 0
        raise SystemExit("PyJWT accepted a token for the wrong audience")
    if command == "sign":
        key_path, kid, alg, sub, aud = sys.argv[2:7]
        with open(key_path) as handle:
            key = handle.read()
        now = int(time.time())
        print(jwt.encode({"sub": sub, "aud": [aud], "exp": now + 300, "iat": now}, key, algorithm=alg,
                         headers={"kid": kid, "typ": "JWT"}))
        return 0
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())
