"""The benchmark's ceiling: a functions-framework HTTP function answering a constant JSON body.

Same server stack as the scoring function (functions-framework -> gunicorn -> Flask), no work.
"""

import functions_framework

BODY = b'{"transaction_id":"t","wallet_id":"w","score":0.01,"outcome":"allow","reasons":[],"model_version":"v0"}'


@functions_framework.http
def hello(request):  # noqa: ANN001, ANN201
    request.get_data()
    return BODY, 200, {"Content-Type": "application/json"}
