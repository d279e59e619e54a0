#!/usr/bin/env python3
"""Knowledge-graph cases from CrossWOZ's validation dialogues, for `persona kg eval`.

A case is a user turn whose dialogue acts request an attribute ([Request, domain, slot, ""]) of an
attraction, hotel or restaurant; the entity is the one the turn names (an Inform of its 名称) or
else the one the dialogue named last in that domain (by either side's acts), and its name must
appear in the turn or an earlier one (a request for something not yet named, "recommend one and
give me its address", asks for a recommendation, not the graph) and the database must hold a value
for the attribute (not null, not an empty list); the expected values
are the database's (lists as their items, numbers as written). The history is every earlier
turn's text. One case per requested attribute.

Usage: crosswoz_cases.py DATA_DIR OUT.jsonl   (DATA_DIR holds crosswoz_val.json.zip and the dbs)
"""
import json
import os
import sys
import zipfile

DOMAINS = {"景点": "attraction", "酒店": "hotel", "餐馆": "restaurant"}


def literal(v):
    if isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def main():
    data, out_path = sys.argv[1], sys.argv[2]
    db = {}
    for domain, name in DOMAINS.items():
        with open(os.path.join(data, f"crosswoz_{name}_db.json"), encoding="utf-8") as f:
            db[domain] = {entry[0]: entry[1] for entry in json.load(f)}
    with zipfile.ZipFile(os.path.join(data, "crosswoz_val.json.zip")) as z:
        dialogues = json.loads(z.read(z.namelist()[0]).decode("utf-8"))
    cases = skipped = no_value = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for dialogue in dialogues.values():
            history, last = [], {}
            for message in dialogue["messages"]:
                acts = message.get("dialog_act", [])
                named = {a[1]: a[3] for a in acts if a[2] == "名称" and a[3] and a[1] in DOMAINS}
                if message["role"] == "usr":
                    for intent, domain, slot, _ in acts:
                        if intent != "Request" or domain not in DOMAINS or slot == "名称":
                            continue
                        entity = named.get(domain) or last.get(domain)
                        record = db[domain].get(entity) if entity else None
                        # A named entity: the dialogue so far (or this turn) says its name.
                        said = entity and (entity in message["content"] or any(entity in h for h in history))
                        if record is None or slot not in record or not said:
                            skipped += 1
                            continue
                        value = record[slot]
                        if value is None or value == []:
                            no_value += 1  # the database holds no value to answer with
                            continue
                        values = [literal(v) for v in value] if isinstance(value, list) else [literal(value)]
                        out.write(json.dumps({"history": history[:], "question": message["content"], "entity": entity,
                                              "relation": slot, "values": values}, ensure_ascii=False) + "\n")
                        cases += 1
                last.update(named)
                history.append(message["content"])
    print(json.dumps({"cases": cases, "skipped_not_named": skipped, "skipped_no_value": no_value}))


if __name__ == "__main__":
    main()
