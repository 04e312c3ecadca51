"""Read alignment by embedding search (Embed-Search-Align, Holur et al. 2023).

``sequences`` reads genomes and reads through ``seqweave.data.formats.fasta`` and checks
them as nucleotides (errors name file, record and line); ``fragments`` cuts the reference
into overlapping windows; ``encoder`` is the contrastive DNA encoder (a
seqweave Transformer encoder, mean-pooled) and ``contrastive`` trains it with in-batch
InfoNCE; ``index`` holds window embeddings in faiss; ``align`` retrieves the top-k
windows per read and places it by Smith-Waterman (parasail); ``hits`` writes the
result; ``kmers`` is the k-mer profile embedding, the baseline the encoder must beat.
faiss and parasail come with the ``genomics`` extra and are imported only when an
index is built or a read aligned.
"""
