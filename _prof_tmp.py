import cProfile, pstats, time, orjson
from tests.upstreams.models_server import make_openrouter_models
from turnout.catalog.formats import openrouter
body = orjson.dumps({"data": make_openrouter_models(50_000)})
print(len(body)/1e6, "MB")
t=time.perf_counter(); p=orjson.loads(body); print("loads", time.perf_counter()-t)
t=time.perf_counter(); openrouter.parse(p); print("parse", time.perf_counter()-t)
t=time.perf_counter(); openrouter.parse(orjson.loads(body)); print("parse2", time.perf_counter()-t)
cProfile.run('openrouter.parse(orjson.loads(body))', '/tmp/p.out')
pstats.Stats('/tmp/p.out').sort_stats('tottime').print_stats(14)
