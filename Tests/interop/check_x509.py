"""Reads a Writ X.509-SVID with Python `cryptography` and checks the SPIFFE profile.

usage: check_x509.py LEAF.pem SPIFFE_ID ec|rsa INTERMEDIATE.pem ROOT.pem
Exits 0 when every check holds, 1 with the reasons otherwise.
"""
import sys

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID


def load(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def main():
    leaf_path, expected_id, key_kind, intermediate_path, root_path = sys.argv[1:6]
    leaf, intermediate, root = load(leaf_path), load(intermediate_path), load(root_path)
    problems = []

    san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    if uris != [expected_id]:
        problems.append(f"leaf URI SANs {uris}, expected [{expected_id}]")
    if san.critical:
        problems.append("leaf SAN is critical")
    if not leaf.subject.rdns:
        problems.append("leaf subject is empty")

    bc = leaf.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    if bc.value.ca or not bc.critical:
        problems.append(f"leaf basic constraints {bc}")
    ku = leaf.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    if not ku.critical or not ku.value.digital_signature or ku.value.key_cert_sign or ku.value.crl_sign:
        problems.append(f"leaf key usage {ku}")
    if key_kind == "rsa" and not ku.value.key_encipherment:
        problems.append("RSA leaf lacks keyEncipherment")
    if key_kind == "ec" and ku.value.key_encipherment:
        problems.append("EC leaf has keyEncipherment")
    eku = leaf.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    if list(eku) != [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]:
        problems.append(f"leaf EKU {list(eku)}")
    ski = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    aki = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    inter_ski = intermediate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    if aki.key_identifier != inter_ski.digest:
        problems.append("leaf AKI does not match the intermediate's SKI")
    if not ski.digest:
        problems.append("leaf SKI empty")
    if leaf.serial_number.bit_length() > 128 or leaf.serial_number <= 0:
        problems.append(f"leaf serial {leaf.serial_number:x} is not a positive 128-bit number")
    if leaf.not_valid_after_utc > intermediate.not_valid_after_utc:
        problems.append("leaf outlives its issuer")

    for name, ca, path_length in (("intermediate", intermediate, 0), ("root", root, None)):
        bc = ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
        if not bc.critical or not bc.value.ca or bc.value.path_length != path_length:
            problems.append(f"{name} basic constraints {bc}")
        ku = ca.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
        if not ku.critical or not ku.value.key_cert_sign or not ku.value.crl_sign:
            problems.append(f"{name} key usage {ku}")
        uris = ca.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(x509.UniformResourceIdentifier)
        td = "spiffe://" + expected_id.split("/")[2]
        if uris != [td]:
            problems.append(f"{name} URI SAN {uris}, expected [{td}]")

    # The signatures, checked by cryptography itself.
    try:
        leaf.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(root)
    except Exception as error:  # noqa: BLE001 - any failure is a finding
        problems.append(f"signature check failed: {error!r}")

    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
