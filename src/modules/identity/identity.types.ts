import { Field, ID, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A tenant: every record belongs to exactly one company' })
export class Company {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;
}

@ObjectType({ description: 'A node of the role hierarchy' })
export class Role {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => ID, { nullable: true })
  parentId!: string | null;
}

@ObjectType()
export class User {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  email!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Boolean, { description: 'Company admins see and edit every record of their company' })
  isAdmin!: boolean;

  @Field(() => Date, { nullable: true, description: 'When an admin deactivated the user; null while active' })
  deactivatedAt!: Date | null;

  roleId!: string | null;
  companyId!: string;
}
