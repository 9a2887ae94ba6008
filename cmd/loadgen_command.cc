// Being written; see the matching header.
