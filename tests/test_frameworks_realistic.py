"""Realistic projects of each framework give exactly the findings RULES.md describes.

The Celery one is a Django shop with its Kubernetes manifests beside it (a worker Deployment with
its HPA in one multi-document file, `sh -c` with `python -m celery`, args split from command,
credentials from `secretKeyRef`, a single-replica `Recreate` beat).

Imports are aliased, decorators bare and called, options split across decorators, brokers,
middleware and per-call options; near misses sit beside every finding. ``--fix --unsafe-fixes``
on each project re-parses and converges.
"""

from __future__ import annotations

import libcst as cst
import pytest

from helpers import findings, fix, write_project
from qlint.manifests import collect as manifests

PROJECTS = {
    "celery": {
        ".qlint_cache/.gitignore": """
*
""",
        ".qlint_cache/0.1.0-12/facts/84/843bd9b0665dc96cf515d115c9b27bef.json": """
{"__t":"FileFacts","v":{"path":"/tmp/realistic2/shop/orders/models.py","module":"shop.orders.models","imports":{"__dict":[["models","django.db.models"]]},"classes":[{"__t":"ClassFact","v":{"name":"Order","qualname":"Order","span":{"__t":"Span","v":{"start":31,"end":57}},"header":{"__t":"Span","v":{"start":31,"end":57}},"bases":[{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":43,"end":55}},"dotted":"models.Model","qualified":"django.db.models.Model"}}],"keywords":{"__dict":[]},"attrs":{"__dict":[["total",{"__t":"Keyword","v":{"name":"total","value":{"__t":"Value","v":{"kind":"call","span":{"__t":"Span","v":{"start":70,"end":91}},"call":{"__t":"CallFact","v":{"dotted":"models.IntegerField","qualified":"django.db.models.IntegerField","span":{"__t":"Span","v":{"start":70,"end":91}},"lpar":90,"rpar":90,"func_end":89,"receiver":"models","method":"IntegerField"}}}},"span":{"__t":"Span","v":{"start":62,"end":91}}}}]]},"methods":[],"body_insert":58,"body_indent":"    "}}]}}""",
        ".qlint_cache/0.1.0-12/facts/91/915345e7f0105a1eb8c7787ed01afc4d.json": """
{"__t":"FileFacts","v":{"path":"/tmp/realistic2/shop/celery.py","module":"shop.celery","imports":{"__dict":[["os","os"],["Celery","celery.Celery"]]},"assigns":{"__dict":[["app",{"__t":"Keyword","v":{"name":"app","value":{"__t":"Value","v":{"kind":"call","span":{"__t":"Span","v":{"start":110,"end":124}},"call":{"__t":"CallFact","v":{"dotted":"Celery","qualified":"celery.Celery","span":{"__t":"Span","v":{"start":110,"end":124}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":117,"end":123}},"value":"shop"}}],"lpar":117,"rpar":123,"func_end":116,"args_end":123}}}},"span":{"__t":"Span","v":{"start":104,"end":124}}}}]]},"calls":[{"__t":"CallFact","v":{"dotted":"os.environ.setdefault","qualified":"os.environ.setdefault","span":{"__t":"Span","v":{"start":38,"end":102}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":60,"end":84}},"value":"DJANGO_SETTINGS_MODULE"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":86,"end":101}},"value":"shop.settings"}}],"lpar":60,"rpar":101,"func_end":59,"receiver":"os.environ","method":"setdefault","statement":{"__t":"Span","v":{"start":38,"end":102}},"args_end":101}},{"__t":"CallFact","v":{"dotted":"app.config_from_object","qualified":"shop.celery.app.config_from_object","span":{"__t":"Span","v":{"start":125,"end":191}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":148,"end":170}},"value":"django.conf:settings"}}],"kwargs":{"__dict":[["namespace",{"__t":"Keyword","v":{"name":"namespace","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":182,"end":190}},"value":"CELERY"}},"span":{"__t":"Span","v":{"start":172,"end":190}}}}]]},"lpar":148,"rpar":190,"func_end":147,"receiver":"app","method":"config_from_object","statement":{"__t":"Span","v":{"start":125,"end":191}},"args_end":190}},{"__t":"CallFact","v":{"dotted":"app.autodiscover_tasks","qualified":"shop.celery.app.autodiscover_tasks","span":{"__t":"Span","v":{"start":192,"end":216}},"lpar":215,"rpar":215,"func_end":214,"receiver":"app","method":"autodiscover_tasks","statement":{"__t":"Span","v":{"start":192,"end":216}}}}]}}""",
        ".qlint_cache/0.1.0-12/facts/b3/b386e1bdba49dfe5d7746c15544744aa.json": """
{"__t":"FileFacts","v":{"path":"/tmp/realistic2/shop/orders/tasks.py","module":"shop.orders.tasks","imports":{"__dict":[["requests","requests"],["shared_task","celery.shared_task"],["SoftTimeLimitExceeded","celery.exceptions.SoftTimeLimitExceeded"],["task_failure","celery.signals.task_failure"]]},"functions":[{"__t":"FunctionFact","v":{"name":"report_failure","qualname":"report_failure","span":{"__t":"Span","v":{"start":141,"end":205}},"header":{"__t":"Span","v":{"start":141,"end":205}},"def_start":163,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"task_failure.connect","qualified":"celery.signals.task_failure.connect","span":{"__t":"Span","v":{"start":142,"end":162}},"is_call":false,"func_end":162,"receiver":"task_failure","method":"connect"}}],"params":[{"__t":"Param","v":{"name":"sender","has_default":true}},{"__t":"Param","v":{"name":"kwargs","kind":"kwarg"}}],"names":{"__set":["None","connect","kwargs","report_failure","sender","task_failure"],"frozen":false}}},{"__t":"FunctionFact","v":{"name":"charge","qualname":"charge","span":{"__t":"Span","v":{"start":217,"end":347}},"header":{"__t":"Span","v":{"start":217,"end":347}},"def_start":320,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"shared_task","qualified":"celery.shared_task","span":{"__t":"Span","v":{"start":218,"end":319}},"kwargs":{"__dict":[["bind",{"__t":"Keyword","v":{"name":"bind","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":235,"end":239}},"value":true}},"span":{"__t":"Span","v":{"start":230,"end":239}},"comma_end":241}}],["autoretry_for",{"__t":"Keyword","v":{"name":"autoretry_for","value":{"__t":"Value","v":{"kind":"seq","span":{"__t":"Span","v":{"start":256,"end":282}},"elements":[{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":256,"end":281}},"dotted":"requests.RequestException","qualified":"requests.RequestException"}}]}},"span":{"__t":"Span","v":{"start":241,"end":283}},"comma_end":285}}],["retry_backoff",{"__t":"Keyword","v":{"name":"retry_backoff","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":299,"end":303}},"value":true}},"span":{"__t":"Span","v":{"start":285,"end":303}},"comma_end":305}}],["max_retries",{"__t":"Keyword","v":{"name":"max_retries","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":317,"end":318}},"value":5}},"span":{"__t":"Span","v":{"start":305,"end":318}}}}]]},"lpar":230,"rpar":318,"func_end":229,"args_end":318}}],"params":[{"__t":"Param","v":{"name":"self"}},{"__t":"Param","v":{"name":"order_id"}}],"calls":[{"__t":"CallFact","v":{"dotted":"requests.post","qualified":"requests.post","span":{"__t":"Span","v":{"start":363,"end":450}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":377,"end":411}},"value":"https://payments.internal/charge"}}],"kwargs":{"__dict":[["json",{"__t":"Keyword","v":{"name":"json","value":{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":418,"end":437}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":419,"end":426}},"value":"order"}},{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":428,"end":436}},"dotted":"order_id","qualified":"shop.orders.tasks.order_id"}}]}]}},"span":{"__t":"Span","v":{"start":413,"end":437}},"comma_end":439}}],["timeout",{"__t":"Keyword","v":{"name":"timeout","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":447,"end":449}},"value":10}},"span":{"__t":"Span","v":{"start":439,"end":449}}}}]]},"lpar":377,"rpar":449,"func_end":376,"receiver":"requests","method":"post","statement":{"__t":"Span","v":{"start":352,"end":450}},"args_end":449}}],"names":{"__set":["RequestException","True","autoretry_for","bind","charge","json","max_retries","order_id","post","raise_for_status","requests","response","retry_backoff","self","shared_task","timeout"],"frozen":false},"local_calls":{"__dict":[["response",{"__t":"Value","v":{"kind":"call","span":{"__t":"Span","v":{"start":363,"end":450}},"call":{"__t":"CallFact","v":{"dotted":"requests.post","qualified":"requests.post","span":{"__t":"Span","v":{"start":363,"end":450}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":377,"end":411}},"value":"https://payments.internal/charge"}}],"kwargs":{"__dict":[["json",{"__t":"Keyword","v":{"name":"json","value":{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":418,"end":437}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":419,"end":426}},"value":"order"}},{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":428,"end":436}},"dotted":"order_id","qualified":"shop.orders.tasks.order_id"}}]}]}},"span":{"__t":"Span","v":{"start":413,"end":437}},"comma_end":439}}],["timeout",{"__t":"Keyword","v":{"name":"timeout","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":447,"end":449}},"value":10}},"span":{"__t":"Span","v":{"start":439,"end":449}}}}]]},"lpar":377,"rpar":449,"func_end":376,"receiver":"requests","method":"post","args_end":449}}}}]]}}},{"__t":"FunctionFact","v":{"name":"expire_carts","qualname":"expire_carts","span":{"__t":"Span","v":{"start":485,"end":517}},"header":{"__t":"Span","v":{"start":485,"end":517}},"def_start":498,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"shared_task","qualified":"celery.shared_task","span":{"__t":"Span","v":{"start":486,"end":497}},"is_call":false,"func_end":497}}],"params":[],"names":{"__set":["expire_carts","shared_task"],"frozen":false}}},{"__t":"FunctionFact","v":{"name":"nightly_report","qualname":"nightly_report","span":{"__t":"Span","v":{"start":529,"end":563}},"header":{"__t":"Span","v":{"start":529,"end":563}},"def_start":542,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"shared_task","qualified":"celery.shared_task","span":{"__t":"Span","v":{"start":530,"end":541}},"is_call":false,"func_end":541}}],"params":[],"calls":[{"__t":"CallFact","v":{"dotted":"requests.get","qualified":"requests.get","span":{"__t":"Span","v":{"start":581,"end":629}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":594,"end":628}},"value":"https://reports.internal/nightly"}}],"lpar":594,"rpar":628,"func_end":593,"receiver":"requests","method":"get","statement":{"__t":"Span","v":{"start":581,"end":629}},"args_end":628}}],"handlers":[{"__t":"HandlerFact","v":{"span":{"__t":"Span","v":{"start":634,"end":663}},"types":["SoftTimeLimitExceeded"],"name":null,"type_end":662,"reraises":true,"top_level":true,"try_index":1}},{"__t":"HandlerFact","v":{"span":{"__t":"Span","v":{"start":682,"end":699}},"types":["Exception"],"name":null,"type_end":698,"top_level":true,"try_index":1}}],"names":{"__set":["Exception","SoftTimeLimitExceeded","get","nightly_report","requests","shared_task"],"frozen":false}}},{"__t":"FunctionFact","v":{"name":"rebuild_search_index","qualname":"rebuild_search_index","span":{"__t":"Span","v":{"start":715,"end":792}},"header":{"__t":"Span","v":{"start":715,"end":792}},"def_start":765,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"shared_task","qualified":"celery.shared_task","span":{"__t":"Span","v":{"start":716,"end":764}},"kwargs":{"__dict":[["time_limit",{"__t":"Keyword","v":{"name":"time_limit","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":739,"end":742}},"value":900}},"span":{"__t":"Span","v":{"start":728,"end":742}},"comma_end":744}}],["soft_time_limit",{"__t":"Keyword","v":{"name":"soft_time_limit","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":760,"end":763}},"value":870}},"span":{"__t":"Span","v":{"start":744,"end":763}}}}]]},"lpar":728,"rpar":763,"func_end":727,"args_end":763}}],"params":[],"names":{"__set":["rebuild_search_index","shared_task","soft_time_limit","time_limit"],"frozen":false}}},{"__t":"FunctionFact","v":{"name":"notify","qualname":"notify","span":{"__t":"Span","v":{"start":804,"end":837}},"header":{"__t":"Span","v":{"start":804,"end":837}},"def_start":817,"is_async":false,"decorators":[{"__t":"CallFact","v":{"dotted":"shared_task","qualified":"celery.shared_task","span":{"__t":"Span","v":{"start":805,"end":816}},"is_call":false,"func_end":816}}],"params":[{"__t":"Param","v":{"name":"payload"}}],"names":{"__set":["notify","payload","shared_task"],"frozen":false},"subscripted":{"__set":["payload"],"frozen":false}}}]}}""",
        ".qlint_cache/0.1.0-12/facts/e0/e0c68ac5a718ed60d873aa61388e2a42.json": """
{"__t":"FileFacts","v":{"path":"/tmp/realistic2/shop/orders/views.py","module":"shop.orders.views","imports":{"__dict":[["transaction","django.db.transaction"],["Order","shop.orders.models.Order"],["charge","shop.orders.tasks.charge"],["notify","shop.orders.tasks.notify"]]},"functions":[{"__t":"FunctionFact","v":{"name":"checkout","qualname":"checkout","span":{"__t":"Span","v":{"start":119,"end":151}},"header":{"__t":"Span","v":{"start":119,"end":151}},"def_start":119,"is_async":false,"decorators":[],"params":[{"__t":"Param","v":{"name":"request"}},{"__t":"Param","v":{"name":"order_id"}}],"calls":[{"__t":"CallFact","v":{"dotted":"Order.objects.get","qualified":"shop.orders.models.Order.objects.get","span":{"__t":"Span","v":{"start":164,"end":194}},"kwargs":{"__dict":[["pk",{"__t":"Keyword","v":{"name":"pk","value":{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":185,"end":193}},"dotted":"order_id","qualified":"shop.orders.views.order_id"}},"span":{"__t":"Span","v":{"start":182,"end":193}}}}]]},"lpar":182,"rpar":193,"func_end":181,"receiver":"Order.objects","method":"get","statement":{"__t":"Span","v":{"start":156,"end":194}},"args_end":193}},{"__t":"CallFact","v":{"dotted":"charge.delay","qualified":"shop.orders.tasks.charge.delay","span":{"__t":"Span","v":{"start":255,"end":277}},"args":[{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":268,"end":276}},"dotted":"order.pk","qualified":"shop.orders.views.order.pk"}}],"lpar":268,"rpar":276,"func_end":267,"receiver":"charge","method":"delay","statement":{"__t":"Span","v":{"start":255,"end":277}},"args_end":276,"with_items":[{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":204,"end":222}},"dotted":"transaction.atomic","qualified":"django.db.transaction.atomic"}}]}},{"__t":"CallFact","v":{"dotted":"transaction.on_commit","qualified":"django.db.transaction.on_commit","span":{"__t":"Span","v":{"start":282,"end":356}},"args":[{"__t":"Value","v":{"kind":"unknown","span":{"__t":"Span","v":{"start":304,"end":355}}}}],"lpar":304,"rpar":355,"func_end":303,"receiver":"transaction","method":"on_commit","statement":{"__t":"Span","v":{"start":282,"end":356}},"args_end":355}},{"__t":"CallFact","v":{"dotted":"notify.delay","qualified":"shop.orders.tasks.notify.delay","span":{"__t":"Span","v":{"start":312,"end":355}},"args":[{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":325,"end":354}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":326,"end":333}},"value":"email"}},{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":335,"end":353}},"dotted":"request.user.email","qualified":"shop.orders.views.request.user.email"}}]}]}}],"lpar":325,"rpar":354,"func_end":324,"receiver":"notify","method":"delay","statement":{"__t":"Span","v":{"start":282,"end":356}},"args_end":354}},{"__t":"CallFact","v":{"dotted":"notify.delay","qualified":"shop.orders.tasks.notify.delay","span":{"__t":"Span","v":{"start":361,"end":380}},"args":[{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":374,"end":379}},"dotted":"order","qualified":"shop.orders.views.order"}}],"lpar":374,"rpar":379,"func_end":373,"receiver":"notify","method":"delay","statement":{"__t":"Span","v":{"start":361,"end":380}},"args_end":379}}],"names":{"__set":["Order","atomic","charge","checkout","delay","email","get","notify","objects","on_commit","order","order_id","pk","request","save","transaction","user"],"frozen":false},"local_calls":{"__dict":[["order",{"__t":"Value","v":{"kind":"call","span":{"__t":"Span","v":{"start":164,"end":194}},"call":{"__t":"CallFact","v":{"dotted":"Order.objects.get","qualified":"shop.orders.models.Order.objects.get","span":{"__t":"Span","v":{"start":164,"end":194}},"kwargs":{"__dict":[["pk",{"__t":"Keyword","v":{"name":"pk","value":{"__t":"Value","v":{"kind":"name","span":{"__t":"Span","v":{"start":185,"end":193}},"dotted":"order_id","qualified":"shop.orders.views.order_id"}},"span":{"__t":"Span","v":{"start":182,"end":193}}}}]]},"lpar":182,"rpar":193,"func_end":181,"receiver":"Order.objects","method":"get","args_end":193}}}}]]}}}]}}""",
        ".qlint_cache/0.1.0-12/facts/e5/e50dbbb9889071625a7158a6f93917b6.json": """
{"__t":"FileFacts","v":{"path":"/tmp/realistic2/shop/settings.py","module":"shop.settings","imports":{"__dict":[["os","os"]]},"assigns":{"__dict":[["DEBUG",{"__t":"Keyword","v":{"name":"DEBUG","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":19,"end":24}},"value":false}},"span":{"__t":"Span","v":{"start":11,"end":24}}}}],["CELERY_BROKER_URL",{"__t":"Keyword","v":{"name":"CELERY_BROKER_URL","value":{"__t":"Value","v":{"kind":"call","span":{"__t":"Span","v":{"start":45,"end":104}},"call":{"__t":"CallFact","v":{"dotted":"os.environ.get","qualified":"os.environ.get","span":{"__t":"Span","v":{"start":45,"end":104}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":60,"end":79}},"value":"CELERY_BROKER_URL"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":81,"end":103}},"value":"redis://redis:6379/0"}}],"lpar":60,"rpar":103,"func_end":59,"receiver":"os.environ","method":"get","args_end":103}}}},"span":{"__t":"Span","v":{"start":25,"end":104}}}}],["CELERY_TASK_TIME_LIMIT",{"__t":"Keyword","v":{"name":"CELERY_TASK_TIME_LIMIT","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":130,"end":133}},"value":300}},"span":{"__t":"Span","v":{"start":105,"end":133}}}}],["CELERY_TASK_SOFT_TIME_LIMIT",{"__t":"Keyword","v":{"name":"CELERY_TASK_SOFT_TIME_LIMIT","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":164,"end":167}},"value":270}},"span":{"__t":"Span","v":{"start":134,"end":167}}}}],["CELERY_WORKER_MAX_TASKS_PER_CHILD",{"__t":"Keyword","v":{"name":"CELERY_WORKER_MAX_TASKS_PER_CHILD","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":204,"end":207}},"value":200}},"span":{"__t":"Span","v":{"start":168,"end":207}}}}],["CELERY_TASK_ACKS_LATE",{"__t":"Keyword","v":{"name":"CELERY_TASK_ACKS_LATE","value":{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":232,"end":236}},"value":true}},"span":{"__t":"Span","v":{"start":208,"end":236}}}}],["CELERY_BEAT_SCHEDULE",{"__t":"Keyword","v":{"name":"CELERY_BEAT_SCHEDULE","value":{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":260,"end":488}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":266,"end":280}},"value":"expire-carts"}},{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":282,"end":343}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":283,"end":289}},"value":"task"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":291,"end":323}},"value":"shop.orders.tasks.expire_carts"}}]},{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":325,"end":335}},"value":"schedule"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":337,"end":342}},"value":{"__f":"600.0"}}}]}]}}]},{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":349,"end":365}},"value":"nightly-report"}},{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":367,"end":485}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":368,"end":374}},"value":"task"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":376,"end":410}},"value":"shop.orders.tasks.nightly_report"}}]},{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":412,"end":422}},"value":"schedule"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":424,"end":431}},"value":{"__f":"86400.0"}}}]},{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":456,"end":465}},"value":"options"}},{"__t":"Value","v":{"kind":"dict","span":{"__t":"Span","v":{"start":467,"end":484}},"items":[{"__tuple":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":468,"end":477}},"value":"expires"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":479,"end":483}},"value":3600}}]}]}}]}]}}]}]}},"span":{"__t":"Span","v":{"start":237,"end":488}}}}]]},"calls":[{"__t":"CallFact","v":{"dotted":"os.environ.get","qualified":"os.environ.get","span":{"__t":"Span","v":{"start":45,"end":104}},"args":[{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":60,"end":79}},"value":"CELERY_BROKER_URL"}},{"__t":"Value","v":{"kind":"const","span":{"__t":"Span","v":{"start":81,"end":103}},"value":"redis://redis:6379/0"}}],"lpar":60,"rpar":103,"func_end":59,"receiver":"os.environ","method":"get","statement":{"__t":"Span","v":{"start":25,"end":104}},"args_end":103}}]}}""",
        ".qlint_cache/0.1.0-12/index.json": """
{"a64daf986457c4ca721f6a3c538155f5":{"skip":true},"362036ba8c7c8096365eed1efbc8487d":{"skip":true},"843bd9b0665dc96cf515d115c9b27bef":{"skip":true,"facts":true},"915345e7f0105a1eb8c7787ed01afc4d":{"facts":true},"b386e1bdba49dfe5d7746c15544744aa":{"facts":true},"e0c68ac5a718ed60d873aa61388e2a42":{"facts":true},"e50dbbb9889071625a7158a6f93917b6":{"facts":true}}""",
        ".qlint_cache/CACHEDIR.TAG": """
Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by qlint.
""",
        "k8s/worker.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-worker
spec:
  replicas: 3
  template:
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: worker
          image: registry.example.com/shop:2.3.1
          command: ["sh", "-c"]
          args:
            - exec python -m celery -A shop worker -Q default -c 8
          env:
            - name: CELERY_BROKER_URL
              valueFrom:
                secretKeyRef: {name: shop-secrets, key: broker-url}
          resources:
            requests:
              cpu: "1"
              memory: 1Gi
            limits:
              memory: 1Gi
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: shop-worker
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: shop-worker
  minReplicas: 3
  maxReplicas: 10
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-beat
spec:
  replicas: 1
  strategy:
    type: Recreate
  template:
    spec:
      containers:
        - name: beat
          image: registry.example.com/shop:2.3.1
          args: ["celery", "-A", "shop", "beat", "-l", "info"]
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {memory: 256Mi}
""",
        "shop/__init__.py": "",
        "shop/celery.py": """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
""",
        "shop/orders/__init__.py": "",
        "shop/orders/models.py": """
from django.db import models


class Order(models.Model):
    total = models.IntegerField()
""",
        "shop/orders/tasks.py": """
import requests
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure


@task_failure.connect
def report_failure(sender=None, **kwargs):
    pass


@shared_task(bind=True, autoretry_for=(requests.RequestException,), retry_backoff=True, max_retries=5)
def charge(self, order_id):
    response = requests.post("https://payments.internal/charge", json={"order": order_id}, timeout=10)
    response.raise_for_status()


@shared_task
def expire_carts():
    pass


@shared_task
def nightly_report():
    try:
        requests.get("https://reports.internal/nightly")
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        pass


@shared_task(time_limit=900, soft_time_limit=870)
def rebuild_search_index():
    pass


@shared_task
def notify(payload):
    return payload["email"]
""",
        "shop/orders/views.py": """
from django.db import transaction

from shop.orders.models import Order
from shop.orders.tasks import charge, notify


def checkout(request, order_id):
    order = Order.objects.get(pk=order_id)
    with transaction.atomic():
        order.save()
        charge.delay(order.pk)
    transaction.on_commit(lambda: notify.delay({"email": request.user.email}))
    notify.delay(order)
""",
        "shop/settings.py": """
import os

DEBUG = False
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://redis:6379/0")
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 270
CELERY_WORKER_MAX_TASKS_PER_CHILD = 200
CELERY_TASK_ACKS_LATE = True
CELERY_BEAT_SCHEDULE = {
    "expire-carts": {"task": "shop.orders.tasks.expire_carts", "schedule": 600.0},
    "nightly-report": {"task": "shop.orders.tasks.nightly_report", "schedule": 86400.0,
                       "options": {"expires": 3600}},
}
""",
    },
    "arq": {
        "app/__init__.py": "",
        "app/jobs.py": """
import time

import requests


async def crawl(ctx, url):
    time.sleep(1)
    return requests.get(url, timeout=10).text


async def digest(ctx):
    job = await ctx["redis"].enqueue_job("crawl", "https://example.com")
    return await job.result(timeout=60)


async def cleanup(ctx):
    pass
""",
        "app/worker.py": """
import msgpack
from arq import cron, create_pool
from arq.connections import RedisSettings
from arq.worker import func

from app.jobs import cleanup, crawl, digest

FUNCTIONS = [func(crawl, timeout=120, max_tries=3), digest]


class WorkerSettings:
    functions = FUNCTIONS
    cron_jobs = [cron(cleanup, hour=3, timeout=-1)]
    redis_settings = RedisSettings(host="redis")
    job_serializer = msgpack.packb
    job_deserializer = msgpack.unpackb


async def producer():
    return await create_pool(RedisSettings(host="redis"))
""",
    },
    "dramatiq": {
        "app/__init__.py": "",
        "app/actors.py": """
import time
from functools import partial

import dramatiq as dq
import httpx

from app import broker  # noqa: F401  (installs the broker)

task = partial(dq.actor, queue_name="default")


@task(time_limit=60, max_retries=None)
def resize(image_id):
    pass


@dq.actor(actor_name="notify", on_failure="report_failure")
async def notify(user_id):
    time.sleep(1)
    httpx.get("https://hooks.internal/notify", timeout=None)


@dq.actor
def report_failure(message_data, exception_data):
    pass


class Nightly(dq.GenericActor):
    class Meta:
        queue_name = "nightly"
        max_retries = 3
        time_limit = 3_600_000

    def perform(self):
        pass


def later(user_id):
    notify.send_with_options(args=(user_id,), delay=30, on_retry_exhausted="missing_handler")
""",
        "app/broker.py": """
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Retries, TimeLimit
from dramatiq.middleware.asyncio import AsyncIO

broker = RedisBroker(
    url="redis://redis:6379/0",
    middleware=[AgeLimit(), TimeLimit(time_limit=900_000), Callbacks(), Retries(max_retries=5, min_backoff=500)],
)
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)
""",
    },
    "huey": {
        "app/__init__.py": "",
        "app/main.py": """
from huey import RedisHuey, crontab
from huey.serializer import Serializer

huey = RedisHuey("app", url="redis://redis:6379/0", serializer=Serializer(compression=True))
""",
        "app/tasks.py": """
import requests
from huey.exceptions import TaskTimeout

from app.main import huey


@huey.task(retries=3, retry_delay=30, timeout=120)
def sync(account_id):
    try:
        requests.get("https://api.example.com", timeout=10)
    except TaskTimeout:
        raise
    except Exception:
        pass


@huey.task(retries=2, timeout="2m")
def export(report_id):
    try:
        pass
    except:
        return None


@huey.periodic_task(crontab(minute="0"))
def hourly():
    result = sync(1)
    result.get(blocking=True)


@huey.task()
async def fetch(url):
    pass


@huey.task(timeout=60)
def cleanup():
    try:
        pass
    except Exception as exc:
        print(exc)
""",
    },
    "rq": {
        "app/__init__.py": "",
        "app/api.py": """
from rq import Retry

from app.jobs import crunch, export
from app.queues import RETRY, default


def schedule(numbers):
    default.enqueue(crunch, numbers, job_timeout=0, retry=Retry(max=3))
    default.enqueue_call(func=export, args=(1,), timeout=-1, retry=RETRY)
    default.enqueue(crunch, numbers, job_timeout="2h")
""",
        "app/jobs.py": """
import requests

from app.queues import background


@background(timeout="10m")
def export(report_id):
    try:
        return requests.get(f"https://reports.internal/{report_id}", timeout=30).json()
    except Exception:
        return None


@background()
def ping(url):
    return requests.head(url)


def crunch(numbers):
    return sum(numbers)
""",
        "app/queues.py": """
from functools import partial

from redis import Redis
from rq import Queue as RQQueue, Retry
from rq.decorators import job as rq_job
from rq.serializers import JSONSerializer

redis = Redis.from_url("redis://redis:6379/0")
default = RQQueue("default", connection=redis, serializer=JSONSerializer, default_timeout="15m")
unbounded = RQQueue("slow", connection=redis, serializer=JSONSerializer, default_timeout=-1)
background = partial(rq_job, "default", connection=redis)
RETRY = Retry(max=5, interval=[10, 60, 300])
""",
    },
    "taskiq": {
        "app/__init__.py": "",
        "app/broker.py": """
from taskiq import SimpleRetryMiddleware
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

broker = (
    ListQueueBroker("redis://redis:6379/0")
    .with_result_backend(RedisAsyncResultBackend("redis://redis:6379/1"))
)
other = ListQueueBroker("redis://redis:6379/2").with_middlewares(SimpleRetryMiddleware(default_retry_count=3))
""",
        "app/tasks.py": """
import subprocess

from app.broker import broker


@broker.task(timeout=30, retry_on_error=True, max_retries=5)
async def fetch(url):
    subprocess.run(["curl", url])


@broker.task
async def render(page):
    handle = await fetch.kiq(page)
    return await handle.wait_result(timeout=5)


@broker.task(task_name="convert", timeout=60)
def convert(path):
    pass


async def enqueue(path):
    await convert.kicker().with_labels(timeout=-5).kiq(path)
""",
    },
}

EXPECTED = {
    "celery": [
        ('k8s/worker.yaml', 2, 'QLT702'),
        ('k8s/worker.yaml', 11, 'QLT705'),
        ('k8s/worker.yaml', 13, 'QLT403'),
        ('shop/celery.py', 7, 'QLT404'),
        ('shop/orders/tasks.py', 26, 'QLT106'),
        ('shop/orders/tasks.py', 29, 'QLT305'),
        ('shop/orders/tasks.py', 38, 'QLT505'),
        ('shop/orders/views.py', 11, 'QLT602'),
        ('shop/orders/views.py', 13, 'QLT603'),
        ('shop/settings.py', 10, 'QLT609'),
    ],
    "arq": [
        ('app/jobs.py', 7, 'QLT605'),
        ('app/jobs.py', 8, 'QLT605'),
        ('app/jobs.py', 11, 'QLT206'),
        ('app/jobs.py', 13, 'QLT601'),
        ('app/worker.py', 13, 'QLT107'),
        ('app/worker.py', 20, 'QLT502'),
    ],
    "dramatiq": [
        ('app/actors.py', 12, 'QLT104'),
        ('app/actors.py', 12, 'QLT201'),
        ('app/actors.py', 19, 'QLT605'),
        ('app/actors.py', 20, 'QLT106'),
        ('app/actors.py', 20, 'QLT605'),
        ('app/actors.py', 39, 'QLT104'),
        ('app/actors.py', 39, 'QLT306'),
        ('app/broker.py', 8, 'QLT104'),
    ],
    "huey": [
        ('app/tasks.py', 13, 'QLT305'),
        ('app/tasks.py', 17, 'QLT107'),
        ('app/tasks.py', 17, 'QLT202'),
        ('app/tasks.py', 21, 'QLT305'),
        ('app/tasks.py', 28, 'QLT601'),
        ('app/tasks.py', 31, 'QLT606'),
        ('app/tasks.py', 40, 'QLT105'),
        ('app/tasks.py', 40, 'QLT305'),
    ],
    "rq": [
        ('app/api.py', 8, 'QLT107'),
        ('app/api.py', 8, 'QLT202'),
        ('app/api.py', 9, 'QLT101'),
        ('app/jobs.py', 10, 'QLT105'),
        ('app/jobs.py', 10, 'QLT305'),
        ('app/jobs.py', 16, 'QLT106'),
        ('app/queues.py', 10, 'QLT101'),
    ],
    "taskiq": [
        ('app/tasks.py', 8, 'QLT605'),
        ('app/tasks.py', 11, 'QLT101'),
        ('app/tasks.py', 14, 'QLT601'),
        ('app/tasks.py', 17, 'QLT103'),
        ('app/tasks.py', 23, 'QLT107'),
    ],
}


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_exact_findings(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    got = sorted((path, row, code) for path, row, code, _ in findings(tmp_path, ["ALL"]))
    assert got == EXPECTED[framework]


@pytest.mark.parametrize("framework", sorted(PROJECTS))
def test_fixes_reparse_and_converge(tmp_path, framework):
    write_project(tmp_path, PROJECTS[framework])
    outcome = fix(tmp_path, ["ALL"])
    assert outcome.fixed, "every project here has a fixable finding"
    for path, src in outcome.fixed.items():
        if path.endswith((".yaml", ".yml")):
            manifests.read(src)  # a fixed manifest still loads
        else:
            cst.parse_module(src.text)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(src.text)
    assert fix(tmp_path, ["ALL"]).fixed == {}
