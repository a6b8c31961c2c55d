"""scripts/bootstrap.py seeds the example policies for the account the
emulator reports (LocalStack runs as 000000000000, moto as 123456789012)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bootstrap  # noqa: E402


class RecordingSsm:
    def __init__(self):
        self.put = {}

    def put_parameter(self, Name, Value, **_):
        self.put[Name] = Value


class Policies(unittest.TestCase):
    def test_the_examples_are_seeded_for_the_emulators_account(self):
        ssm = RecordingSsm()
        files = [os.path.join(bootstrap.ROOT, "examples", "policies", "orders-tenant.yaml")]
        bootstrap.put_policies(ssm, files, False, "000000000000")
        text = ssm.put["/tvm/policies/orders-tenant"]
        self.assertIn("arn:aws:iam::000000000000:role/tvm/orders-tenant", text)
        self.assertNotIn(bootstrap.EXAMPLE_ACCOUNT, text)

    def test_documents_are_put_as_they_are_without_an_account(self):
        ssm = RecordingSsm()
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("profile: mine\nrole_arn: arn:aws:iam::123456789012:role/tvm/mine\n")
        bootstrap.put_policies(ssm, [f.name], False, None)
        os.unlink(f.name)
        self.assertIn("123456789012", ssm.put["/tvm/policies/mine"])


if __name__ == "__main__":
    unittest.main()
