from conductor._entry import conductor_sign

conductor_sign()
