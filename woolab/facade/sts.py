"""AWS STS `GetCallerIdentity` over the lab: the first call every AWS user types (`aws sts
get-caller-identity`), and the one chaostoolkit-aws's AZ power interruption scenario makes before
anything else (it builds the FIS role's ARN from the account).

The lab accepts any credentials (loopback only), so the caller is the lab's own account with a
fixed user; the account is the one every lab ARN carries. Shape from botocore's `sts` model
(API 2011-06-15, Query protocol).
"""


def get_caller_identity(lab, params):
    account = lab.snapshot()["account_id"]
    return {"UserId": "AIDALABGAMEDAYUSER0001", "Account": account,
            "Arn": f"arn:aws:iam::{account}:user/gameday-lab"}


OPERATIONS = {"GetCallerIdentity": get_caller_identity}
