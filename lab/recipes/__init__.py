"""One recipe per page: the function `measured` runs for each of the page's records, read top to bottom.

    measured("week1/finetune", week1.finetune, profile=profile)    # load, train, evaluate, save

A recipe is short and calls the library (lab.train, lab.lora, lab.quantize ...). Its record's fingerprint covers it
and the library it imports (lab.record.fingerprint): an edit to one recipe makes only that recipe's records stale.
"""
